//! S3 event notifications on a laptop: the emulator (moto) keeps a bucket's notification
//! configuration but cannot run a function (it tries Docker, fails, and says nothing), so the
//! gateway delivers the events itself. Every [`POLL_EVERY`] it lists each bucket of the
//! endpoint (ListBuckets, ListObjectsV2); an object that was not there, or is there with other
//! content, at the previous listing is an added object. For each such object the bucket's
//! notification configuration is read (GetBucketNotificationConfiguration), and every Lambda
//! configuration it matches (`s3_events::Notification::matches`) gets the event S3 would send,
//! invoked asynchronously as Lambda does: through the alias the configuration's ARN names, the
//! version drawn by its weights, counted in the `AWS/Lambda` metrics, and on a function error
//! tried twice more after Lambda's waits divided by `--time-scale`.
//!
//! Polling rather than an S3 proxy in front of the emulator: the objects are seen whoever
//! writes them (the aws CLI, a test's SDK client, a function, `promote`'s probe), each with
//! the emulator's own address; a proxy would see only the clients pointed at it. What this
//! cannot emulate is in docs/gateway.md ("S3 events").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use aws_sdk_s3::types::FilterRuleName;
use tokio::sync::{Semaphore, watch};

use crate::invoke_api::{self, Ran};
use crate::runtime::Outcome;
use crate::s3_events::{self, Added, Notification, OBJECT_CREATED_PUT, Seen};
use crate::server::{Gateway, request_id};

/// An object added is delivered within this and one round of listings.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// Events invoked at once, at most: Lambda's asynchronous queue feeds a function from a few
/// pollers rather than starting an instance per event, and on a 2-core laptop an instance per
/// object of a burst of uploads would starve the functions of the CPU they run on.
pub const CONCURRENT_DELIVERIES: usize = 8;

/// The S3 client of the endpoint the gateway reads: path-style addressing when it is an
/// emulator (`AWS_ENDPOINT_URL`), which has no per-bucket host names.
pub fn client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let mut s3 = aws_sdk_s3::config::Builder::from(config);
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        s3 = s3.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(s3.build())
}

pub struct Watcher {
    pub s3: aws_sdk_s3::Client,
    pub gateway: Arc<Gateway>,
    pub time_scale: f64,
    /// bucket -> its objects at the last listing; `None` before the first round.
    listings: Option<BTreeMap<String, BTreeMap<String, Seen>>>,
    sequence: u64,
    limit: Arc<Semaphore>,
}

impl Watcher {
    pub fn new(s3: aws_sdk_s3::Client, gateway: Arc<Gateway>, time_scale: f64) -> Watcher {
        Watcher {
            s3,
            gateway,
            time_scale,
            listings: None,
            sequence: 0,
            limit: Arc::new(Semaphore::new(CONCURRENT_DELIVERIES)),
        }
    }

    /// The first round: the objects already there are not added. The gateway takes it before
    /// it says it is listening, so an object put after that line is always an added one.
    pub async fn baseline(&mut self, stop: &watch::Receiver<bool>) -> Result<()> {
        self.poll_once(stop).await
    }

    /// Polls until `stop`.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut failing = false;
        loop {
            match self.poll_once(&stop).await {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    eprintln!("gateway: S3 events: {e:#}; trying again");
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL_EVERY) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn poll_once(&mut self, stop: &watch::Receiver<bool>) -> Result<()> {
        let buckets = self.buckets().await?;
        let first = self.listings.is_none();
        let mut listings = self.listings.take().unwrap_or_default();
        listings.retain(|b, _| buckets.contains(b));
        let mut result = Ok(());
        for bucket in &buckets {
            let now = match self.objects(bucket).await {
                Ok(now) => now,
                Err(e) => {
                    result = Err(e);
                    continue;
                }
            };
            let empty = BTreeMap::new();
            // A bucket created since the last round is new with all its objects.
            let before = listings.get(bucket).unwrap_or(&empty);
            let added = if first {
                Vec::new()
            } else {
                s3_events::added(before, &now)
            };
            if !added.is_empty() {
                match self.notifications(bucket).await {
                    Ok(notifications) => {
                        for (key, seen) in added {
                            for n in notifications
                                .iter()
                                .filter(|n| n.matches(OBJECT_CREATED_PUT, key))
                            {
                                self.deliver(n, bucket, key, seen, stop.clone());
                            }
                        }
                    }
                    Err(e) => {
                        // Seen again next round rather than lost.
                        result = Err(e);
                        continue;
                    }
                }
            }
            listings.insert(bucket.clone(), now);
        }
        // A first round that missed a bucket is taken again: that bucket's objects would
        // otherwise all look added on the next one.
        if !(first && result.is_err()) {
            self.listings = Some(listings);
        }
        result
    }

    async fn buckets(&self) -> Result<BTreeSet<String>> {
        let out = self.s3.list_buckets().send().await.context("ListBuckets")?;
        Ok(out
            .buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_string))
            .collect())
    }

    async fn objects(&self, bucket: &str) -> Result<BTreeMap<String, Seen>> {
        let mut objects = BTreeMap::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("ListObjectsV2 of bucket {bucket}"))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                let last_modified_ms = o
                    .last_modified()
                    .and_then(|t| t.to_millis().ok())
                    .unwrap_or(0)
                    .max(0) as u64;
                objects.insert(
                    key.to_string(),
                    Seen {
                        size: o.size().unwrap_or(0),
                        etag: o.e_tag().unwrap_or_default().trim_matches('"').to_string(),
                        last_modified_ms,
                    },
                );
            }
        }
        Ok(objects)
    }

    async fn notifications(&self, bucket: &str) -> Result<Vec<Notification>> {
        let out = self
            .s3
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
            .await
            .with_context(|| format!("GetBucketNotificationConfiguration of bucket {bucket}"))?;
        Ok(out
            .lambda_function_configurations()
            .iter()
            .map(|c| {
                let rules = c
                    .filter()
                    .and_then(|f| f.key())
                    .map(|k| k.filter_rules())
                    .unwrap_or_default();
                let rule = |name: FilterRuleName| {
                    rules
                        .iter()
                        .find(|r| r.name() == Some(&name))
                        .and_then(|r| r.value())
                        .unwrap_or_default()
                        .to_string()
                };
                Notification {
                    id: c.id().unwrap_or_default().to_string(),
                    function_arn: c.lambda_function_arn().to_string(),
                    events: c.events().iter().map(|e| e.as_str().to_string()).collect(),
                    prefix: rule(FilterRuleName::Prefix),
                    suffix: rule(FilterRuleName::Suffix),
                }
            })
            .collect())
    }

    /// The event for `key` to `n`'s function, in its own task: up to three attempts.
    fn deliver(
        &mut self,
        n: &Notification,
        bucket: &str,
        key: &str,
        seen: &Seen,
        stop: watch::Receiver<bool>,
    ) {
        self.sequence += 1;
        let rid = request_id();
        let event = s3_events::event(
            n,
            &Added {
                region: &self.gateway.region,
                bucket,
                key,
                seen,
                at: SystemTime::now(),
                sequence: self.sequence,
                request_id: &rid,
            },
        )
        .to_string()
        .into_bytes();
        let delivery = Delivery {
            gateway: self.gateway.clone(),
            limit: self.limit.clone(),
            function_arn: n.function_arn.clone(),
            object: format!("s3://{bucket}/{key}"),
            time_scale: self.time_scale,
        };
        tokio::spawn(delivery.run(event, stop));
    }
}

struct Delivery {
    gateway: Arc<Gateway>,
    limit: Arc<Semaphore>,
    function_arn: String,
    object: String,
    time_scale: f64,
}

impl Delivery {
    async fn run(self, event: Vec<u8>, mut stop: watch::Receiver<bool>) {
        let gw = &self.gateway;
        let (name, qualifier) = invoke_api::parse_function(&self.function_arn);
        let target = if !gw.functions.iter().any(|f| f == name) {
            Err(format!(
                "names function {name}, which the gateway does not serve ({})",
                gw.functions.join(", ")
            ))
        } else {
            match qualifier {
                None => Err(
                    "names no alias: the local gateway runs published versions only; name the stage's alias in the ARN"
                        .to_string(),
                ),
                Some(q) => Ok(q),
            }
        };
        let qualifier = match target {
            Ok(q) => q,
            Err(why) => {
                eprintln!(
                    "gateway: S3 event for {}: the notification's {} {why}; not delivered",
                    self.object, self.function_arn
                );
                return;
            }
        };
        for attempt in 1..=s3_events::ATTEMPTS {
            if let Some(wait) = s3_events::retry_after(attempt, self.time_scale) {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            // The alias as it is now: a retry follows a moved alias, as Lambda's does.
            let Some(alias) = invoke_api::alias_or_version(gw, name, qualifier) else {
                eprintln!(
                    "gateway: S3 event for {}: function {name} has no alias or version {qualifier}; not delivered",
                    self.object
                );
                return;
            };
            let Ok(_permit) = self.limit.acquire().await else {
                return;
            };
            let Ran {
                outcome,
                version,
                failed,
                throttled,
                duration,
                ..
            } = invoke_api::invoke_alias(gw, name, &alias, event.clone()).await;
            if gw.verbose {
                eprintln!(
                    "{} S3 event {} -> {name}:{} version={version} attempt={attempt} error={failed} throttled={throttled} duration_ms={:.2}",
                    httpdate::fmt_http_date(SystemTime::now()),
                    self.object,
                    alias.name,
                    duration.as_secs_f64() * 1000.0
                );
            }
            if matches!(outcome, Outcome::Response(_)) {
                return;
            }
        }
        eprintln!(
            "gateway: S3 event for {} to {}: failed {} attempts; discarded (no on-failure destination)",
            self.object,
            self.function_arn,
            s3_events::ATTEMPTS
        );
    }
}
