//! A tiny HTTP/1.1 server on loopback for tests (of this crate and of `promote probe`):
//! names a version in each answer as the `app` does, by a rule of the test's choosing, and
//! can stall: an answer due inside the stall window is held until the window ends, as a
//! server paused by a garbage collector or a cold start would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// What the `n`th request (counted by the server from 0) is answered with: (status,
/// version header or none).
pub type Rule = Arc<dyn Fn(u64) -> (u16, Option<String>) + Send + Sync>;
/// The same, knowing the request (its line, content type and body).
pub type RequestRule = Arc<dyn Fn(u64, &Received) -> (u16, Option<String>) + Send + Sync>;

pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    seen: Seen,
}

/// Every request received: its head (request line and headers, lowercased names) and body.
type Seen = Arc<Mutex<Vec<Received>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// `PUT /hello/probe HTTP/1.1`.
    pub line: String,
    pub content_type: Option<String>,
    pub body: String,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every `every`th request to `b`, the rest to `a`, all 200.
pub fn split_rule(a: &str, b: &str, every: u64) -> Rule {
    let (a, b) = (a.to_string(), b.to_string());
    Arc::new(move |n| {
        let v = if n.is_multiple_of(every) { &b } else { &a };
        (200, Some(v.clone()))
    })
}

/// Serves on 127.0.0.1 and a free port until dropped. `stall`: (from, length) after the
/// server started.
pub async fn serve(rule: Rule, stall: Option<(Duration, Duration)>) -> Server {
    serve_requests(Arc::new(move |n, _| rule(n)), stall).await
}

/// [`serve`], answering by the request as well.
pub async fn serve_requests(rule: RequestRule, stall: Option<(Duration, Duration)>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    let started = Instant::now();
    let count = Arc::new(AtomicU64::new(0));
    let seen = Seen::default();
    let seen_by_task = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (rule, count, seen) = (rule.clone(), count.clone(), seen_by_task.clone());
            tokio::spawn(connection(stream, rule, count, seen, started, stall));
        }
    });
    Server { addr, task, seen }
}

/// The request line, content type and length of a request head.
fn parse_head(head: &[u8]) -> (String, Option<String>, usize) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default().to_string();
    let (mut content_type, mut length) = (None, 0);
    for l in lines {
        if let Some((name, value)) = l.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-type" => content_type = Some(value.trim().to_string()),
                "content-length" => length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    (line, content_type, length)
}

async fn connection(
    mut stream: TcpStream,
    rule: RequestRule,
    count: Arc<AtomicU64>,
    seen: Seen,
    started: Instant,
    stall: Option<(Duration, Duration)>,
) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        // One request (its head, then a body of its content-length) at a time; keep-alive
        // until the client closes.
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let (line, content_type, length) = parse_head(&buf[..end]);
        while buf.len() < end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[end..end + length]).into_owned();
        buf.drain(..end + length);
        let received = Received {
            line,
            content_type,
            body,
        };
        if let Some((from, length)) = stall {
            let at = started.elapsed();
            if at >= from && at < from + length {
                tokio::time::sleep_until(started + from + length).await;
            }
        }
        let (status, version) = rule(count.fetch_add(1, Ordering::Relaxed), &received);
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(received);
        let header = version
            .map(|v| format!("x-app-version: {v}\r\n"))
            .unwrap_or_default();
        let answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-length: 2\r\n{header}connection: keep-alive\r\n\r\nok"
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}
