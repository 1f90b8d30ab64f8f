//! The live canary through the gateway: 2000 requests split by the alias's weight, and the
//! metrics CloudWatch holds afterwards count every one of them, per version, exactly.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use support::{Stack, get, wait_for};

const REQUESTS: usize = 2000;
const WEIGHT: f64 = 0.1;

#[test]
fn a_ten_percent_canary_gets_ten_percent_and_every_request_is_counted() {
    let stack = Stack::new();
    let zip_a = stack.app_zip("a.zip", None);
    let zip_b = stack.app_zip("b.zip", Some("candidate"));
    let stable = stack.publish(&zip_a);
    let candidate = stack.publish(&zip_b);
    // The split `promote canary --stage live --weight 10` leaves (promote's own tests cover
    // getting there; here it is the traffic that matters).
    stack.set_alias("live", &stable, Some((&candidate, WEIGHT)));
    let gw = stack.gateway(&[
        "--artifacts",
        zip_a.to_str().unwrap(),
        zip_b.to_str().unwrap(),
    ]);

    let served: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..REQUESTS / 4 {
                    let a = get(gw.port, "/live/build-info");
                    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
                    let v = a.json()["lambda"]["function_version"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    *served.lock().unwrap().entry(v).or_default() += 1;
                }
            });
        }
    });
    let served = served.into_inner().unwrap();
    assert_eq!(served.values().sum::<usize>(), REQUESTS);
    assert_eq!(served.len(), 2, "{served:?}");
    let got = served[&candidate] as f64;
    let mean = REQUESTS as f64 * WEIGHT;
    let sigma = (REQUESTS as f64 * WEIGHT * (1.0 - WEIGHT)).sqrt();
    assert!(
        (got - mean).abs() <= 3.0 * sigma,
        "candidate served {got} of {REQUESTS}, expected {mean} ± {:.0}",
        3.0 * sigma
    );

    // What the gateway published, read back from CloudWatch: one Invocation per request, on
    // the version that served it, no errors; one API Count per request on the stage.
    let expect = |metric: &str, dims: &[(&str, &str)], want: f64| {
        let reached = wait_for(Duration::from_secs(10), || {
            let sum = stack.metric_sum(
                if metric == "Count" {
                    "AWS/ApiGateway"
                } else {
                    "AWS/Lambda"
                },
                metric,
                dims,
            );
            (sum >= want).then_some(sum)
        });
        let sum = reached.map(|(s, _)| s).unwrap_or_default();
        assert_eq!(sum, want, "{metric} {dims:?}");
    };
    for (version, n) in &served {
        let dims = [
            ("FunctionName", "app"),
            ("Resource", "app:live"),
            ("ExecutedVersion", version.as_str()),
        ];
        expect("Invocations", &dims, *n as f64);
    }
    expect(
        "Invocations",
        &[("FunctionName", "app"), ("Resource", "app:live")],
        REQUESTS as f64,
    );
    expect(
        "Count",
        &[("ApiName", "app"), ("Stage", "live")],
        REQUESTS as f64,
    );
    let errors = stack.metric_sum(
        "AWS/Lambda",
        "Errors",
        &[("FunctionName", "app"), ("Resource", "app:live")],
    );
    assert_eq!(errors, 0.0);
    gw.stop();
}
