lambda_kit::build_info!();
