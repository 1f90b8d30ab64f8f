//! An AWS SDK error as one readable line: the SDK's outer layers say only which layer failed
//! ("service error", "dispatch failure"); the causes say why. Every adapter's messages use it.

/// The error and its causes, joined, without the SDK's layer names and debug dumps.
pub(crate) fn concise(e: &(dyn std::error::Error + 'static)) -> String {
    // The SDK's outer layers say only which layer failed; the causes say why.
    const LAYERS: [&str; 5] = [
        "service error",
        "dispatch failure",
        "io error",
        "unhandled error",
        "other",
    ];
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        let readable = !text.is_empty()
            && !LAYERS.contains(&text.as_str())
            && !text.contains(" { ")
            && text.len() <= 300;
        if readable && !parts.iter().any(|p| p.contains(text.as_str())) {
            parts.push(text);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        return e.to_string();
    }
    parts.join(": ")
}
