use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    LambdaErrors,
    LambdaThrottles,
    #[serde(rename = "api_5xx_rate")]
    Api5xxRate,
    ApiP99Latency,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub name: String,
    pub kind: AlarmKind,
    pub threshold: f64,
    pub period_seconds: u32,
    pub evaluation_periods: u32,
}
