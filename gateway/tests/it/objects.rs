//! The notes and images functions through the gateway, against the emulator's S3: the
//! dev-profile `notes` and `images` binaries as published versions, on the buckets and stage
//! variables the seed creates as Terraform does. Every case of both contracts; each bad
//! input leaves the bucket exactly as it was; the images' copies read back through the API
//! and decoded. And the gateway's part: an upload (a binary media type) reaches the function
//! intact, a body over API Gateway's 10 MB is answered 413 whether the client waits for
//! `100 Continue` or sends it all, and an event over Lambda's 6 MiB is 413 without an
//! invocation.

use crate::support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Stack, request, wait_for};

/// The notes and images entries of project.json, as issue 22 gives them, added to the test's
/// copy of environments/ when it does not list them yet.
fn add_functions(environments: &Path) {
    let path = environments.join("project.json");
    let mut project: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let functions = project["functions"].as_array_mut().unwrap();
    let listed = |name: &str| functions.iter().any(|f| f["name"] == name);
    let mut added = Vec::new();
    if !listed("notes") {
        added.push(json!({
            "name": "notes", "package": "notes", "routes": ["/notes/{name}"], "buckets": ["notes"],
            "probe": {"method": "PUT", "path": "/notes/probe", "body": "probe",
                      "content_type": "text/plain", "expect_status": 200}
        }));
    }
    if !listed("images") {
        let png = sample(Format::Png, 2, 2);
        let (content_type, body) = multipart(
            "probe",
            &[("s3Key", None, b"probe.png"), ("file", Some("p.png"), &png)],
        );
        added.push(json!({
            "name": "images", "package": "images", "routes": ["/images", "/images/{key+}"],
            "buckets": ["images"],
            "probe": {"method": "POST", "path": "/images", "body_base64": b64(&body),
                      "content_type": content_type, "expect_status": 201}
        }));
    }
    functions.extend(added);
    std::fs::write(&path, serde_json::to_string_pretty(&project).unwrap()).unwrap();
}

fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            match i <= chunk.len() {
                true => out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char),
                false => out.push('='),
            }
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Format {
    Jpeg,
    Png,
}

/// A `w` x `h` gradient encoded as `format`.
fn sample(format: Format, w: u32, h: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    let format = match format {
        Format::Jpeg => image::ImageFormat::Jpeg,
        Format::Png => image::ImageFormat::Png,
    };
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A multipart/form-data body of (name, file name, bytes), as `curl -F` sends it.
fn multipart(boundary: &str, fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, file, bytes) in fields {
        let file = file
            .map(|f| format!("; filename=\"{f}\""))
            .unwrap_or_default();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A zip whose bootstrap is the dev-profile binary `package`, which the harness's workspace
/// build made beside `app`.
fn function_zip(stack: &Stack, package: &str) -> PathBuf {
    support::workspace_bins();
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().unwrap().parent().unwrap().join(package);
    let bootstrap = std::fs::read(&binary).unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    stack.zip(&format!("{package}.zip"), &[("bootstrap", &bootstrap)])
}

/// Every object of `bucket`: key -> (bytes, Content-Type).
fn contents(
    stack: &Stack,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> BTreeMap<String, (Vec<u8>, String)> {
    stack.block_on(async {
        let listed = s3
            .list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .expect("ListObjectsV2");
        let mut out = BTreeMap::new();
        for object in listed.contents() {
            let key = object.key().unwrap().to_string();
            let got = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .expect("GetObject");
            let content_type = got.content_type().unwrap_or_default().to_string();
            let bytes = got.body.collect().await.unwrap().to_vec();
            out.insert(key, (bytes, content_type));
        }
        out
    })
}

/// The dev stage's variable `name` (a bucket's name, as the seed set it).
fn stage_variable(stack: &Stack, apigw: &aws_sdk_apigateway::Client, name: &str) -> String {
    let api_id = stack.seeded["rest_api_id"].as_str().unwrap();
    let stage = stack
        .block_on(
            apigw
                .get_stage()
                .rest_api_id(api_id)
                .stage_name("dev")
                .send(),
        )
        .expect("GetStage");
    stage
        .variables()
        .and_then(|v| v.get(name))
        .cloned()
        .unwrap_or_else(|| panic!("dev has no stage variable {name}"))
}

fn decoded(bytes: &[u8]) -> (image::ImageFormat, u32, u32) {
    let format = image::guess_format(bytes).expect("an image");
    let image = image::load_from_memory_with_format(bytes, format).expect("decodes");
    (format, image.width(), image.height())
}

fn send(
    port: u16,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> support::Answer {
    let headers: Vec<(&str, &str)> = content_type
        .map(|c| ("Content-Type", c))
        .into_iter()
        .collect();
    request(port, method, path, &headers, body).unwrap()
}

/// method, path, content type, body, expected status, expected error code (or, for API
/// Gateway's own answers, its message).
type BadInput = (
    &'static str,
    String,
    Option<String>,
    Vec<u8>,
    u16,
    &'static str,
);

/// Sends each case, checks its status and JSON, and that `bucket` is unchanged after it.
fn refuse_each(
    stack: &Stack,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    port: u16,
    cases: Vec<BadInput>,
) {
    let before = contents(stack, s3, bucket);
    assert!(!before.is_empty(), "the bucket holds the earlier writes");
    for (method, path, content_type, body, status, error) in cases {
        let case = format!("{method} {path} {content_type:?} ({} bytes)", body.len());
        let a = send(port, method, &path, content_type.as_deref(), &body);
        let said: Value = serde_json::from_slice(&a.body)
            .unwrap_or_else(|_| panic!("{case}: not JSON: {:?}", String::from_utf8_lossy(&a.body)));
        assert_eq!(a.status, status, "{case}: {said}");
        match said.get("error") {
            Some(code) => {
                assert_eq!(code, error, "{case}: {said}");
                assert!(
                    said["message"].as_str().unwrap().len() > 20,
                    "{case}: {said}"
                );
            }
            None => assert_eq!(said["message"], error, "{case}: {said}"),
        }
        assert_eq!(
            contents(stack, s3, bucket),
            before,
            "{case} changed the bucket"
        );
    }
}

#[test]
fn notes_and_images_through_the_gateway_on_the_emulators_s3() {
    let stack = Stack::with_environments(add_functions);
    let config = stack.sdk_config();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let notes_bucket = stage_variable(&stack, &apigw, "notesBucket");
    let images_bucket = stage_variable(&stack, &apigw, "imagesBucket");
    assert!(contents(&stack, &s3, &notes_bucket).is_empty());

    let notes_zip = function_zip(&stack, "notes");
    let images_zip = function_zip(&stack, "images");
    let v_notes = stack.publish_function("notes", &notes_zip);
    let v_images = stack.publish_function("images", &images_zip);
    stack.set_function_alias("notes", "dev", &v_notes);
    stack.set_function_alias("images", "dev", &v_images);
    let gw = stack.gateway(&[
        "--artifacts",
        notes_zip.to_str().unwrap(),
        images_zip.to_str().unwrap(),
    ]);
    let port = gw.port;

    // Notes. The first answer waits for the stack's first read and the instance's start.
    let (absent, _) = wait_for(Duration::from_secs(20), || {
        let a = send(port, "GET", "/dev/notes/todo", None, b"");
        (a.status == 404).then_some(a)
    })
    .unwrap_or_else(|| panic!("no 404 for an absent note: {}", gw.stderr()));
    assert_eq!(absent.json()["error"], "note_not_found");
    assert_eq!(absent.header("x-app-version"), Some(v_notes.as_str()));

    let text = Some("text/plain; charset=utf-8");
    let a = send(
        port,
        "PUT",
        "/dev/notes/todo",
        text,
        "buy milk, thé".as_bytes(),
    );
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        a.json(),
        json!({"name": "todo", "key": "todo.txt", "bytes": 14, "created": true})
    );
    let a = send(
        port,
        "PUT",
        "/dev/notes/todo",
        Some("text/plain"),
        b"buy bread",
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["created"], false);
    let stored = contents(&stack, &s3, &notes_bucket);
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored["todo.txt"],
        (
            b"buy bread".to_vec(),
            "text/plain; charset=utf-8".to_string()
        )
    );
    let a = send(port, "GET", "/dev/notes/todo", None, b"");
    assert_eq!(a.status, 200);
    assert_eq!(a.body, b"buy bread");
    assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));

    let text = || Some("text/plain".to_string());
    let note_cases: Vec<BadInput> = vec![
        (
            "PUT",
            "/dev/notes/..%2Fx".into(),
            text(),
            b"x".to_vec(),
            400,
            "invalid_name",
        ),
        (
            "PUT",
            "/dev/notes/a%2Fb".into(),
            text(),
            b"x".to_vec(),
            400,
            "invalid_name",
        ),
        (
            "PUT",
            "/dev/notes/.hidden".into(),
            text(),
            b"x".to_vec(),
            400,
            "invalid_name",
        ),
        (
            "PUT",
            "/dev/notes/a%20b".into(),
            text(),
            b"x".to_vec(),
            400,
            "invalid_name",
        ),
        (
            "PUT",
            format!("/dev/notes/{}", "n".repeat(65)),
            text(),
            b"x".to_vec(),
            400,
            "invalid_name",
        ),
        (
            "PUT",
            "/dev/notes/big".into(),
            text(),
            vec![b'a'; 64 * 1024 + 1],
            413,
            "body_too_large",
        ),
        (
            "PUT",
            "/dev/notes/j".into(),
            Some("application/json".into()),
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "PUT",
            "/dev/notes/j".into(),
            None,
            b"x".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "PUT",
            "/dev/notes/j".into(),
            Some("text/plain; charset=latin1".into()),
            b"x".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "DELETE",
            "/dev/notes/todo".into(),
            None,
            vec![],
            405,
            "method_not_allowed",
        ),
        (
            "PUT",
            "/dev/notes".into(),
            text(),
            b"x".to_vec(),
            403,
            "Missing Authentication Token",
        ),
        (
            "PUT",
            "/dev/notes/a/b".into(),
            text(),
            b"x".to_vec(),
            403,
            "Missing Authentication Token",
        ),
    ];
    refuse_each(&stack, &s3, &notes_bucket, port, note_cases);

    // Images: a JPEG and a PNG, each stored with its copies in its format.
    let jpeg = sample(Format::Jpeg, 640, 480);
    let (content_type, body) = multipart(
        "b0und",
        &[
            ("s3Key", None, b"photos/cat.jpg"),
            ("file", Some("cat.jpg"), &jpeg),
        ],
    );
    let a = send(port, "POST", "/dev/images", Some(&content_type), &body);
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    let said = a.json();
    assert_eq!(a.header("x-app-version"), Some(v_images.as_str()));
    assert_eq!(
        (
            said["key"].clone(),
            said["format"].clone(),
            said["width"].clone()
        ),
        (json!("photos/cat.jpg"), json!("jpeg"), json!(640))
    );
    assert_eq!(
        said["copies"][0],
        json!({"key": "photos/cat.jpg_200", "width": 200, "height": 150, "bytes": said["copies"][0]["bytes"]})
    );
    assert_eq!(said["copies"][1]["key"], "photos/cat.jpg_75");
    let png = sample(Format::Png, 90, 300);
    let (content_type, body) = multipart(
        "x",
        &[("file", Some("t.png"), &png), ("s3Key", None, b"tall.png")],
    );
    let a = send(port, "POST", "/dev/images", Some(&content_type), &body);
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));

    let stored = contents(&stack, &s3, &images_bucket);
    let keys: Vec<&str> = stored.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "photos/cat.jpg",
            "photos/cat.jpg_200",
            "photos/cat.jpg_75",
            "tall.png",
            "tall.png_200",
            "tall.png_75"
        ]
    );
    assert_eq!(
        stored["photos/cat.jpg"].0, jpeg,
        "the original arrived byte for byte"
    );
    assert_eq!(stored["tall.png"].0, png);
    for (key, want) in [
        ("photos/cat.jpg_200", (image::ImageFormat::Jpeg, 200, 150)),
        ("photos/cat.jpg_75", (image::ImageFormat::Jpeg, 75, 56)),
        ("tall.png_200", (image::ImageFormat::Png, 200, 667)),
        ("tall.png_75", (image::ImageFormat::Png, 75, 250)),
    ] {
        assert_eq!(decoded(&stored[key].0), want, "{key} in the bucket");
        // Read back through the API: the function's base64 answer decoded by the gateway.
        let a = send(port, "GET", &format!("/dev/images/{key}"), None, b"");
        assert_eq!(a.status, 200, "{key}");
        assert_eq!(a.body, stored[key].0, "{key} through the API");
        let content_type = match want.0 {
            image::ImageFormat::Jpeg => "image/jpeg",
            _ => "image/png",
        };
        assert_eq!(a.header("content-type"), Some(content_type));
    }
    let a = send(port, "GET", "/dev/images/photos/dog.jpg", None, b"");
    assert_eq!(
        (a.status, a.json()["error"].clone()),
        (404, json!("image_not_found"))
    );

    let form = |fields: &[(&str, Option<&str>, &[u8])]| {
        let (ct, body) = multipart("bnd", fields);
        (Some(ct), body)
    };
    let with_key = |key: &str| form(&[("s3Key", None, key.as_bytes()), ("file", Some("f"), &png)]);
    // 4.6 MB: within Lambda's event once base64-encoded, over the function's 4.5 MB.
    let over_function = vec![0u8; 4_600_000];
    // 5 MB: base64 makes the event 6.7 MB, over Lambda's 6 MiB.
    let over_lambda = vec![0u8; 5_000_000];
    // 11 MB: over API Gateway's 10 MB; the client sends it all before it reads the answer.
    let over_gateway = vec![0u8; 11 * 1024 * 1024];
    let mut image_cases: Vec<BadInput> = Vec::new();
    let mut post = |(ct, body): (Option<String>, Vec<u8>), status, error| {
        image_cases.push(("POST", "/dev/images".into(), ct, body, status, error))
    };
    post(with_key("../etc/passwd"), 400, "invalid_key");
    post(with_key("/abs.png"), 400, "invalid_key");
    post(with_key("cat.png_200"), 400, "invalid_key");
    post(with_key("a b.png"), 400, "invalid_key");
    post(
        form(&[
            ("s3Key", None, b"a.txt"),
            ("file", Some("a.txt"), b"not an image at all"),
        ]),
        400,
        "not_an_image",
    );
    post(
        form(&[
            ("s3Key", None, b"t.png"),
            ("file", Some("t.png"), &png[..40]),
        ]),
        400,
        "corrupt_image",
    );
    post(form(&[("file", Some("f"), &png)]), 400, "missing_field");
    post(form(&[("s3Key", None, b"k.png")]), 400, "missing_field");
    post(
        form(&[
            ("s3Key", None, b"k.png"),
            ("file", None, &png),
            ("acl", None, b"public-read"),
        ]),
        400,
        "unknown_field",
    );
    post(
        (Some("image/png".into()), png.clone()),
        415,
        "unsupported_media_type",
    );
    post(
        form(&[("s3Key", None, b"big.png"), ("file", None, &over_function)]),
        413,
        "upload_too_large",
    );
    post(
        form(&[("s3Key", None, b"big.png"), ("file", None, &over_lambda)]),
        413,
        "Request Too Long",
    );
    post(
        form(&[("s3Key", None, b"big.png"), ("file", None, &over_gateway)]),
        413,
        "Request Too Long",
    );
    image_cases.push((
        "GET",
        "/dev/images/..%2Fx".into(),
        None,
        vec![],
        400,
        "invalid_key",
    ));
    image_cases.push((
        "PUT",
        "/dev/images".into(),
        None,
        vec![],
        405,
        "method_not_allowed",
    ));
    refuse_each(&stack, &s3, &images_bucket, port, image_cases);

    // A client that waits for `100 Continue` before a body declared over 10 MB is answered
    // at once, having sent nothing.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /dev/images HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 20000000\r\nExpect: 100-continue\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("Request Too Long"), "{answer}");

    gw.stop();
}
