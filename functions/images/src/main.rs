use std::process::ExitCode;

fn main() -> ExitCode {
    lambda_kit::serve::main(images::build_info::BINARY, || async {
        // Region, endpoint and credentials from the standard AWS environment (Lambda sets
        // them; the local gateway sets AWS_ENDPOINT_URL to its emulator). No bucket name:
        // that comes with each request (routes.rs).
        images::router(objects::S3::from_env().await)
    })
}
