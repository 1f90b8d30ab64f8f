//! The birthday API through the gateway, against the emulator's DynamoDB: the dev-profile
//! `birthday` binary as a published version, on the table and stage variable the seed creates
//! as Terraform does (the test stage's variable taken off). Every case of the contract, each
//! bad input leaving the table unchanged, and `app` still served beside it on the same stage;
//! then a fault of birthday's version alone fires birthday's own error alarm, not app's.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_apigateway::types::{Op, PatchOperation};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use support::{Stack, get, request, wait_for};

const TABLE: &str = "birthday-dev";

/// Every item of the table: username -> dateOfBirth.
fn table(stack: &Stack, dynamo: &aws_sdk_dynamodb::Client) -> BTreeMap<String, String> {
    let out = stack
        .block_on(dynamo.scan().table_name(TABLE).consistent_read(true).send())
        .expect("Scan");
    out.items()
        .iter()
        .map(|item| {
            let s = |k: &str| match item.get(k) {
                Some(AttributeValue::S(v)) => v.clone(),
                other => panic!("{k} of {item:?} is {other:?}"),
            };
            (s("username"), s("dateOfBirth"))
        })
        .collect()
}

/// Takes the birthdayTable stage variable off `stage`, as a stage misconfigured by hand would be.
fn remove_stage_variable(stack: &Stack, apigw: &aws_sdk_apigateway::Client, stage: &str) {
    let api_id = stack.seeded["rest_api_id"].as_str().unwrap();
    stack
        .block_on(
            apigw
                .update_stage()
                .rest_api_id(api_id)
                .stage_name(stage)
                .patch_operations(
                    PatchOperation::builder()
                        .op(Op::Remove)
                        .path("/variables/birthdayTable")
                        .build(),
                )
                .send(),
        )
        .expect("UpdateStage");
}

fn today_utc() -> NaiveDate {
    DateTime::<Utc>::from(std::time::SystemTime::now()).date_naive()
}

/// `date` moved back `years` years (a multiple of 4, so 29 February stays a real date).
fn years_before(date: NaiveDate, years: i32) -> String {
    assert_eq!(years % 4, 0);
    NaiveDate::from_ymd_opt(date.year() - years, date.month(), date.day())
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

fn put(port: u16, path: &str, content_type: Option<&str>, body: &str) -> support::Answer {
    let headers: Vec<(&str, &str)> = content_type
        .map(|c| ("Content-Type", c))
        .into_iter()
        .collect();
    request(port, "PUT", path, &headers, body.as_bytes()).unwrap()
}

/// method, path, content type, body, expected status, expected error code.
type BadInput<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, u16, &'a str);

#[test]
fn the_birthday_contract_through_the_gateway_on_the_emulators_dynamodb() {
    let stack = Stack::new();
    let config = stack.sdk_config();
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let apigw = aws_sdk_apigateway::Client::new(&config);
    // The stack as Terraform makes it (tools/seed.py): dev's table, its stage variable.
    assert!(table(&stack, &dynamo).is_empty());
    remove_stage_variable(&stack, &apigw, "test");

    let birthday_zip = stack.birthday_zip("birthday.zip", None);
    let v_birthday = stack.publish_function("birthday", &birthday_zip);
    stack.set_function_alias("birthday", "dev", &v_birthday);
    // The test stage runs the same version but has lost its birthdayTable stage variable.
    stack.set_function_alias("birthday", "test", &v_birthday);
    let app_zip = stack.app_zip("app.zip", None);
    let v_app = stack.publish_function("app", &app_zip);
    stack.set_function_alias("app", "dev", &v_app);
    let gw = stack.gateway(&[
        "--artifacts",
        birthday_zip.to_str().unwrap(),
        app_zip.to_str().unwrap(),
    ]);

    // The first answer waits for the stack's first read and the instance's start.
    let (unknown, _) = wait_for(Duration::from_secs(20), || {
        let a = get(gw.port, "/dev/hello/nobody");
        (a.status == 404).then_some(a)
    })
    .unwrap_or_else(|| panic!("no 404 for an unknown user: {}", gw.stderr()));
    assert_eq!(unknown.json()["error"], "user_not_found");
    assert_eq!(unknown.header("x-app-version"), Some(v_birthday.as_str()));

    // PUT then GET: a birthday today, then one tomorrow (a PUT updates).
    let today = today_utc();
    let born_today = years_before(today, 28);
    let a = put(
        gw.port,
        "/dev/hello/Nando",
        Some("application/json"),
        &format!(r#"{{"dateOfBirth": "{born_today}"}}"#),
    );
    assert_eq!(a.status, 204, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.body.is_empty());
    assert_eq!(
        table(&stack, &dynamo),
        BTreeMap::from([("nando".to_string(), born_today.clone())])
    );
    let a = get(gw.port, "/dev/hello/Nando");
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json(),
        serde_json::json!({"message": "Hello, Nando! Happy birthday!"})
    );

    let tomorrow = today.checked_add_days(Days::new(1)).unwrap();
    let born_tomorrow = years_before(tomorrow, 28);
    let a = put(
        gw.port,
        "/dev/hello/nando",
        Some("application/json"),
        &format!(r#"{{"dateOfBirth": "{born_tomorrow}"}}"#),
    );
    assert_eq!(a.status, 204);
    // `Nando` and `nando` are one user: still one item, now the new date.
    assert_eq!(
        table(&stack, &dynamo),
        BTreeMap::from([("nando".to_string(), born_tomorrow)])
    );
    let a = get(gw.port, "/dev/hello/NANDO");
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json()["message"],
        "Hello, NANDO! Your birthday is in 1 day(s)"
    );

    // Every bad input: a 4xx with a JSON error saying what was wrong, the table unchanged.
    let before = table(&stack, &dynamo);
    let json = Some("application/json");
    let good = r#"{"dateOfBirth": "2000-01-01"}"#;
    let today_body = format!(r#"{{"dateOfBirth": "{today}"}}"#);
    let future_body = format!(r#"{{"dateOfBirth": "{tomorrow}"}}"#);
    let long = format!("/dev/hello/{}", "a".repeat(65));
    let big = format!(
        r#"{{"dateOfBirth": "2000-01-01", "pad": "{}"}}"#,
        "x".repeat(2048)
    );
    let cases: Vec<BadInput> = vec![
        (
            "PUT",
            "/dev/hello/nando1",
            json,
            good,
            400,
            "invalid_username",
        ),
        (
            "PUT",
            "/dev/hello/Nand%C3%A9",
            json,
            good,
            400,
            "invalid_username",
        ),
        ("PUT", &long, json, good, 400, "invalid_username"),
        (
            "PUT",
            "/dev/hello/ana",
            json,
            &today_body,
            400,
            "date_not_in_the_past",
        ),
        (
            "PUT",
            "/dev/hello/ana",
            json,
            &future_body,
            400,
            "date_not_in_the_past",
        ),
        (
            "PUT",
            "/dev/hello/ana",
            json,
            r#"{"dateOfBirth": "2023-02-30"}"#,
            400,
            "invalid_date",
        ),
        (
            "PUT",
            "/dev/hello/ana",
            json,
            r#"{"dateOfBirth": "2000-01-01""#,
            400,
            "malformed_json",
        ),
        ("PUT", "/dev/hello/ana", json, "{}", 400, "missing_field"),
        (
            "PUT",
            "/dev/hello/ana",
            Some("text/plain"),
            good,
            415,
            "unsupported_media_type",
        ),
        ("PUT", "/dev/hello/ana", json, &big, 413, "body_too_large"),
        (
            "DELETE",
            "/dev/hello/nando",
            None,
            "",
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            "/dev/hello/ana",
            json,
            good,
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, content_type, body, status, error) in cases {
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| ("Content-Type", c))
            .into_iter()
            .collect();
        let a = request(gw.port, method, path, &headers, body.as_bytes()).unwrap();
        let case = format!("{method} {path:.40} {content_type:?}");
        assert_eq!(
            a.status,
            status,
            "{case}: {}",
            String::from_utf8_lossy(&a.body)
        );
        let said = a.json();
        assert_eq!(said["error"], error, "{case}: {said}");
        assert!(
            said["message"].as_str().is_some_and(|m| m.len() > 20),
            "{case}: {said}"
        );
        assert_eq!(table(&stack, &dynamo), before, "{case} changed the table");
    }
    // A path no resource matches is API Gateway's answer, not the function's.
    let a = put(gw.port, "/dev/hello/a/b", json, good);
    assert_eq!(a.status, 403);
    assert_eq!(a.json()["message"], "Missing Authentication Token");
    assert_eq!(table(&stack, &dynamo), before);

    // A stage without the birthdayTable stage variable: a 500 that says so, nothing written.
    let a = put(gw.port, "/test/hello/ana", json, good);
    assert_eq!(a.status, 500, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["error"], "missing_stage_variable");
    assert_eq!(table(&stack, &dynamo), before);

    // app, on the same stage, still answers its routes with its own version.
    let info = get(gw.port, "/dev/build-info");
    assert_eq!(info.status, 200, "{}", String::from_utf8_lossy(&info.body));
    assert_eq!(info.json()["lambda"]["function_name"], "app");
    assert_eq!(info.json()["lambda"]["function_version"], v_app.as_str());
    let root = get(gw.port, "/dev/");
    assert_eq!(root.status, 200);
    assert_eq!(root.body, b"Hello, World!");
    gw.stop();

    // One function's bad version: `--fault birthday/N` fails birthday alone, and the alarm that
    // fires is birthday's own Lambda alarm on dev, not app's.
    let fault = format!("birthday/{v_birthday}:1.0");
    let gw = stack.gateway(&[
        "--artifacts",
        birthday_zip.to_str().unwrap(),
        app_zip.to_str().unwrap(),
        "--fault",
        &fault,
        "--time-scale",
        "60",
    ]);
    let (birthday_alarm, app_alarm) = ("app-dev-lambda-errors-birthday", "app-dev-lambda-errors");
    assert_eq!(stack.alarm_state(birthday_alarm).0, "OK");
    let fired = wait_for(Duration::from_secs(20), || {
        assert_eq!(get(gw.port, "/dev/hello/nando").status, 502);
        let (state, reason) = stack.alarm_state(birthday_alarm);
        (state == "ALARM").then_some(reason)
    });
    assert!(
        fired.is_some(),
        "{birthday_alarm} did not fire: {}",
        gw.stderr()
    );
    assert_eq!(
        get(gw.port, "/dev/build-info").status,
        200,
        "app is not faulted"
    );
    assert_eq!(
        stack.alarm_state(app_alarm).0,
        "OK",
        "app's alarm watches app alone"
    );
    gw.stop();
}
