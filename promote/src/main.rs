fn main() {
    println!("promote: not implemented yet");
}
