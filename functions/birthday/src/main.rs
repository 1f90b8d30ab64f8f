use birthday::clock::SystemClock;
use birthday::store::Dynamo;
use std::process::ExitCode;

fn main() -> ExitCode {
    lambda_kit::serve::main(birthday::build_info::BINARY, || async {
        // Region, endpoint and credentials from the standard AWS environment (Lambda sets
        // them; the local gateway sets AWS_ENDPOINT_URL to its emulator). No table name:
        // that comes with each request (routes.rs).
        let config = aws_https::defaults().load().await;
        let store = Dynamo::new(aws_sdk_dynamodb::Client::new(&config));
        birthday::router(store, SystemClock)
    })
}
