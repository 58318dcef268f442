//! Reading the OTLP metrics a client pushes (KIP-714 payloads are an OpenTelemetry
//! `MetricsData` message, protobuf-encoded).
//!
//! Only the part of the OTLP metrics schema weir keeps is declared here, with `prost`'s
//! derive: `opentelemetry-proto` would bring gRPC (tonic) and the OpenTelemetry SDK into
//! the broker to read about ten messages whose field numbers the stable OTLP v1 schema
//! fixes. Fields not declared are skipped by the decoder, as protobuf requires.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct MetricsData {
    #[prost(message, repeated, tag = "1")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceMetrics {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ScopeMetrics {
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(oneof = "MetricData", tags = "5, 7, 9, 11")]
    pub data: Option<MetricData>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum MetricData {
    #[prost(message, tag = "5")]
    Gauge(Gauge),
    #[prost(message, tag = "7")]
    Sum(Sum),
    #[prost(message, tag = "9")]
    Histogram(Histogram),
    #[prost(message, tag = "11")]
    Summary(Summary),
}

#[derive(Clone, PartialEq, Message)]
pub struct Gauge {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sum {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<HistogramDataPoint>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<SummaryDataPoint>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NumberDataPoint {
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(oneof = "NumberValue", tags = "4, 6")]
    pub value: Option<NumberValue>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum NumberValue {
    #[prost(double, tag = "4")]
    AsDouble(f64),
    #[prost(sfixed64, tag = "6")]
    AsInt(i64),
}

#[derive(Clone, PartialEq, Message)]
pub struct HistogramDataPoint {
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    pub count: u64,
    #[prost(double, optional, tag = "5")]
    pub sum: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SummaryDataPoint {
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    pub count: u64,
    #[prost(double, tag = "5")]
    pub sum: f64,
}

#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    #[prost(oneof = "Value", tags = "1, 2, 3, 4")]
    pub value: Option<Value>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    #[prost(string, tag = "1")]
    String(String),
    #[prost(bool, tag = "2")]
    Bool(bool),
    #[prost(int64, tag = "3")]
    Int(i64),
    #[prost(double, tag = "4")]
    Double(f64),
}

/// The latest value of one metric series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    Double(f64),
    Int(i64),
    /// A histogram or summary: how many values, and their sum.
    Distribution {
        count: u64,
        sum: f64,
    },
}

/// One data point, flattened: the series name (the metric name, then its attributes as
/// `{k=v,...}` sorted by key when it has some), the sample time and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub series: String,
    pub time_unix_nano: u64,
    pub value: MetricValue,
}

/// The string attributes of the pushing client's resource, as (key, value).
pub type ResourceAttributes = Vec<(String, String)>;

/// A point's attributes, rendered `k=v` and sorted, so the same series gets the same name.
fn series(name: &str, attributes: &[KeyValue]) -> String {
    if attributes.is_empty() {
        return name.to_string();
    }
    let mut pairs: Vec<String> = attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Int(i)) => i.to_string(),
                Some(Value::Double(d)) => d.to_string(),
                None => String::new(),
            };
            format!("{}={v}", kv.key)
        })
        .collect();
    pairs.sort();
    format!("{name}{{{}}}", pairs.join(","))
}

/// Decodes a `MetricsData` payload into its samples and the resource's attributes (the
/// client's own description of itself).
pub fn decode(payload: &[u8]) -> Result<(Vec<Sample>, ResourceAttributes), prost::DecodeError> {
    let data = MetricsData::decode(payload)?;
    let mut samples = Vec::new();
    let mut resource = Vec::new();
    for rm in &data.resource_metrics {
        if let Some(r) = &rm.resource {
            for kv in &r.attributes {
                if let Some(Value::String(v)) = kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    resource.push((kv.key.clone(), v.clone()));
                }
            }
        }
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let mut number = |points: &[NumberDataPoint]| {
                    for p in points {
                        let value = match p.value {
                            Some(NumberValue::AsDouble(d)) => MetricValue::Double(d),
                            Some(NumberValue::AsInt(i)) => MetricValue::Int(i),
                            None => continue,
                        };
                        samples.push(Sample {
                            series: series(&m.name, &p.attributes),
                            time_unix_nano: p.time_unix_nano,
                            value,
                        });
                    }
                };
                match &m.data {
                    Some(MetricData::Gauge(g)) => number(&g.data_points),
                    Some(MetricData::Sum(s)) => number(&s.data_points),
                    Some(MetricData::Histogram(h)) => {
                        for p in &h.data_points {
                            samples.push(Sample {
                                series: series(&m.name, &p.attributes),
                                time_unix_nano: p.time_unix_nano,
                                value: MetricValue::Distribution {
                                    count: p.count,
                                    sum: p.sum.unwrap_or(0.0),
                                },
                            });
                        }
                    }
                    Some(MetricData::Summary(s)) => {
                        for p in &s.data_points {
                            samples.push(Sample {
                                series: series(&m.name, &p.attributes),
                                time_unix_nano: p.time_unix_nano,
                                value: MetricValue::Distribution {
                                    count: p.count,
                                    sum: p.sum,
                                },
                            });
                        }
                    }
                    // Exponential histograms and metrics without data are not kept.
                    None => {}
                }
            }
        }
    }
    Ok((samples, resource))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    fn attr(k: &str, v: Value) -> KeyValue {
        KeyValue {
            key: k.to_string(),
            value: Some(AnyValue { value: Some(v) }),
        }
    }

    /// A payload as a Java producer pushes it: a resource, a sum and a gauge.
    pub fn payload(counter: i64) -> Vec<u8> {
        MetricsData {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![attr("client_id", Value::String("app".into()))],
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "org.apache.kafka.producer.record.send.total".into(),
                            data: Some(MetricData::Sum(Sum {
                                data_points: vec![NumberDataPoint {
                                    attributes: vec![],
                                    time_unix_nano: 7,
                                    value: Some(NumberValue::AsInt(counter)),
                                }],
                            })),
                        },
                        Metric {
                            name: "org.apache.kafka.producer.node.request.latency.avg".into(),
                            data: Some(MetricData::Gauge(Gauge {
                                data_points: vec![NumberDataPoint {
                                    attributes: vec![
                                        attr("node_id", Value::String("1".into())),
                                        attr("a", Value::Int(2)),
                                    ],
                                    time_unix_nano: 8,
                                    value: Some(NumberValue::AsDouble(1.5)),
                                }],
                            })),
                        },
                    ],
                }],
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn decodes_sums_gauges_and_attributes() {
        // Goal: each data point becomes one sample named by its metric and sorted attributes.
        let (samples, resource) = decode(&payload(3)).unwrap();
        assert_eq!(resource, [("client_id".to_string(), "app".to_string())]);
        assert_eq!(
            samples,
            [
                Sample {
                    series: "org.apache.kafka.producer.record.send.total".into(),
                    time_unix_nano: 7,
                    value: MetricValue::Int(3),
                },
                Sample {
                    series: "org.apache.kafka.producer.node.request.latency.avg{a=2,node_id=1}"
                        .into(),
                    time_unix_nano: 8,
                    value: MetricValue::Double(1.5),
                },
            ]
        );
        assert!(decode(b"\xff\xff\xff").is_err());
    }
}
