//! API Gateway's resource tree: which function's route a request path selects, and its path
//! parameters. Pure: built from `environments/project.json`'s routes, matched per request.
//!
//! Matching follows API Gateway's precedence at each segment: a literal segment over a path
//! parameter (`{username}`) over a greedy one (`{proxy+}`, one or more segments, last in
//! its path). A more specific branch that fails deeper gives way to the next one, so the most
//! specific resource that matches the whole path answers. No match is API Gateway's 403
//! `Missing Authentication Token`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Resource {
    function: String,
    /// As API Gateway names it in the event: `/hello/{username}`.
    path: String,
    segments: Vec<Segment>,
}

/// Every function's routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources(Vec<Resource>);

/// The resource a request selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a> {
    pub function: &'a str,
    /// The resource's path template: the event's `resource` and `requestContext.resourcePath`.
    pub resource: &'a str,
    /// Each path parameter's value, percent-decoded (the event's `pathParameters`).
    pub parameters: BTreeMap<String, String>,
}

fn parse(path: &str) -> Result<Vec<Segment>, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("route {path:?} does not start with /"));
    };
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let last = parts.len().saturating_sub(1);
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let inner = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'));
            match inner {
                None if part.contains(['{', '}']) => Err(format!(
                    "route {path:?}: segment {part:?} is neither literal nor {{name}}"
                )),
                None => Ok(Segment::Literal((*part).to_string())),
                Some(name) => match name.strip_suffix('+') {
                    Some(greedy) if i == last && !greedy.is_empty() => {
                        Ok(Segment::Greedy(greedy.to_string()))
                    }
                    Some(_) => Err(format!(
                        "route {path:?}: a greedy {part} must be the last segment"
                    )),
                    None if name.is_empty() => Err(format!("route {path:?}: empty parameter name")),
                    None => Ok(Segment::Param(name.to_string())),
                },
            }
        })
        .collect()
}

/// How specific a resource is at segment `i`: literal 0, parameter 1, greedy 2, none 3.
fn rank(segments: &[Segment], i: usize) -> u8 {
    match segments.get(i) {
        Some(Segment::Literal(_)) => 0,
        Some(Segment::Param(_)) => 1,
        Some(Segment::Greedy(_)) => 2,
        None => 3,
    }
}

impl Resources {
    /// Every function's routes in project.json.
    pub fn of_project(project: &rollout::Project) -> Result<Self, String> {
        Resources::new(project.functions.iter().flat_map(|f| {
            f.routes
                .iter()
                .map(move |route| (f.name.as_str(), route.as_str()))
        }))
    }

    /// From (function, route) pairs; an ill-formed route, or one served by two functions, is
    /// an error that names it.
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut out: Vec<Resource> = Vec::new();
        for (function, path) in routes {
            let segments = parse(path)?;
            if let Some(other) = out.iter().find(|r| same_shape(&r.segments, &segments)) {
                return Err(format!(
                    "route {path:?} of function {function} is also route {:?} of function {}",
                    other.path, other.function
                ));
            }
            out.push(Resource {
                function: function.to_string(),
                path: path.to_string(),
                segments,
            });
        }
        Ok(Resources(out))
    }

    /// The resource `path` (the request path after the stage, `/hello/Nando`) selects.
    pub fn find(&self, path: &str) -> Option<Matched<'_>> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut candidates: Vec<&Resource> = self
            .0
            .iter()
            .filter(|r| matches(&r.segments, &parts))
            .collect();
        // The most specific: compare segment by segment, literal < parameter < greedy.
        candidates.sort_by(|a, b| {
            (0..parts.len().max(1))
                .map(|i| rank(&a.segments, i).cmp(&rank(&b.segments, i)))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let chosen = candidates.first()?;
        let mut parameters = BTreeMap::new();
        for (i, segment) in chosen.segments.iter().enumerate() {
            match segment {
                Segment::Literal(_) => {}
                Segment::Param(name) => {
                    parameters.insert(name.clone(), percent_decode(parts[i]));
                }
                Segment::Greedy(name) => {
                    parameters.insert(name.clone(), percent_decode(&parts[i..].join("/")));
                }
            }
        }
        Some(Matched {
            function: &chosen.function,
            resource: &chosen.path,
            parameters,
        })
    }
}

fn same_shape(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Segment::Literal(p), Segment::Literal(q)) => p == q,
            (Segment::Param(_), Segment::Param(_)) | (Segment::Greedy(_), Segment::Greedy(_)) => {
                true
            }
            _ => false,
        })
}

fn matches(segments: &[Segment], parts: &[&str]) -> bool {
    match segments.last() {
        Some(Segment::Greedy(_)) => {
            let fixed = segments.len() - 1;
            parts.len() > fixed && fits(&segments[..fixed], &parts[..fixed])
        }
        _ => segments.len() == parts.len() && fits(segments, parts),
    }
}

fn fits(segments: &[Segment], parts: &[&str]) -> bool {
    segments.iter().zip(parts).all(|(s, p)| match s {
        Segment::Literal(l) => l == p,
        Segment::Param(_) | Segment::Greedy(_) => true,
    })
}

pub fn percent_decode(s: &str) -> String {
    // form_urlencoded turns '+' into a space, which a path must not; protect it first.
    let protected = s.replace('+', "%2B");
    form_urlencoded::parse(format!("x={protected}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Resources {
        Resources::new([
            ("app", "/"),
            ("app", "/build-info"),
            ("birthday", "/hello/{username}"),
            ("files", "/files/{proxy+}"),
            ("files", "/files/readme"),
            ("other", "/{first}/{second}"),
        ])
        .unwrap()
    }

    /// function, resource, parameters.
    type Found = (String, String, Vec<(String, String)>);

    fn find(path: &str) -> Option<Found> {
        let r = resources();
        r.find(path).map(|m| {
            (
                m.function.to_string(),
                m.resource.to_string(),
                m.parameters.into_iter().collect(),
            )
        })
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn literal_routes_and_the_root() {
        assert_eq!(find("/"), Some(("app".into(), "/".into(), vec![])));
        assert_eq!(
            find("/build-info"),
            Some(("app".into(), "/build-info".into(), vec![]))
        );
        // A trailing slash names the same resource.
        assert_eq!(find("/build-info/").unwrap().1, "/build-info");
    }

    #[test]
    fn a_path_parameter_takes_one_segment_decoded() {
        assert_eq!(
            find("/hello/Nando"),
            Some((
                "birthday".into(),
                "/hello/{username}".into(),
                p(&[("username", "Nando")])
            ))
        );
        assert_eq!(
            find("/hello/Nand%C3%A9").unwrap().2,
            p(&[("username", "Nandé")])
        );
        assert_eq!(find("/hello/a+b").unwrap().2, p(&[("username", "a+b")]));
        // Two segments are not one parameter: `/{first}/{second}` is not three either.
        assert_eq!(find("/hello/a/b"), None);
    }

    #[test]
    fn literal_beats_parameter_beats_greedy() {
        // `/hello/x` fits `/hello/{username}` and `/{first}/{second}`: the literal wins.
        assert_eq!(find("/hello/x").unwrap().0, "birthday");
        assert_eq!(
            find("/other/x"),
            Some((
                "other".into(),
                "/{first}/{second}".into(),
                p(&[("first", "other"), ("second", "x")])
            ))
        );
        assert_eq!(find("/files/readme").unwrap().1, "/files/readme");
        // `/files/x` fits `/files/{proxy+}` and `/{first}/{second}`: at segment 2 a
        // parameter beats a greedy one; at segment 1 the literal `files` already decided.
        assert_eq!(find("/files/x").unwrap().1, "/files/{proxy+}");
        assert_eq!(
            find("/files/a/b%20c"),
            Some((
                "files".into(),
                "/files/{proxy+}".into(),
                p(&[("proxy", "a/b c")])
            ))
        );
        // A greedy segment needs at least one segment.
        assert_eq!(find("/files"), None);
    }

    #[test]
    fn ill_formed_or_doubled_routes_are_refused() {
        assert!(
            Resources::new([("a", "hello")])
                .unwrap_err()
                .contains("start with /")
        );
        assert!(
            Resources::new([("a", "/{proxy+}/x")])
                .unwrap_err()
                .contains("last segment")
        );
        assert!(
            Resources::new([("a", "/x{y}")])
                .unwrap_err()
                .contains("neither literal")
        );
        let err = Resources::new([("a", "/hello/{name}"), ("b", "/hello/{user}")]).unwrap_err();
        assert!(
            err.contains("function a") && err.contains("function b"),
            "{err}"
        );
    }
}
