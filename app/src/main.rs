use std::process::ExitCode;

fn main() -> ExitCode {
    lambda_kit::serve::main(app::build_info::BINARY, || async { app::router() })
}
