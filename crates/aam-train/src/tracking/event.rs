//! Protocol-buffer encoding of the TensorBoard messages aam writes: `Event` with a
//! `Summary` of scalars, histograms or text, a `file_version` or a `SessionLog`.
//!
//! Field numbers are those of TensorFlow's `core/util/event.proto`,
//! `core/framework/summary.proto`, `tensor.proto` and `types.proto`; the messages are
//! encoded with rust-protobuf's `CodedOutputStream` (no generated code is needed for the
//! handful of fields used).

use protobuf::CodedOutputStream;

/// One value of a `Summary`.
#[derive(Debug, Clone, PartialEq)]
pub enum SummaryValue {
    /// `simple_value` (float32), the scalars dashboard.
    Scalar(f32),
    /// `histo`, the histograms and distributions dashboards.
    Histogram(Histogram),
    /// A string tensor tagged for the text plugin (rendered as Markdown).
    Text(String),
}

/// A `HistogramProto`: bucket `i` counts the values in `(bucket_limit[i - 1],
/// bucket_limit[i]]` (the first bucket starts at `min`).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of values.
    pub num: f64,
    /// Sum of the values.
    pub sum: f64,
    /// Sum of their squares.
    pub sum_squares: f64,
    /// Right edge of every bucket, increasing; the last is `max`.
    pub bucket_limit: Vec<f64>,
    /// Count of every bucket.
    pub bucket: Vec<f64>,
}

impl Histogram {
    /// `buckets` equal-width buckets over `[min, max]` of `values` (one bucket when every
    /// value is equal). Non-finite values are not counted: NaN and ±∞ have no bucket
    /// (`num` counts the finite values only). `None` when no value is finite.
    pub fn of(values: &[f32], buckets: usize) -> Option<Histogram> {
        let finite = || values.iter().map(|&v| v as f64).filter(|v| v.is_finite());
        let (min, max) = finite().fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })?;
        let n = if max > min { buckets.max(1) } else { 1 };
        let width = (max - min) / n as f64;
        let bucket_limit: Vec<f64> = (1..=n)
            .map(|i| if i == n { max } else { min + width * i as f64 })
            .collect();
        let mut bucket = vec![0.0; n];
        let (mut num, mut sum, mut sum_squares) = (0.0, 0.0, 0.0);
        for v in finite() {
            // Right-closed buckets: a value on an inner edge belongs to the bucket it ends.
            let i = if width > 0.0 {
                (((v - min) / width).ceil() as usize).clamp(1, n) - 1
            } else {
                0
            };
            bucket[i] += 1.0;
            num += 1.0;
            sum += v;
            sum_squares += v * v;
        }
        Some(Histogram {
            min,
            max,
            num,
            sum,
            sum_squares,
            bucket_limit,
            bucket,
        })
    }
}

/// What an `Event` carries.
#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    /// `file_version`: the first event of every file (`"brain.Event:2"`).
    FileVersion,
    /// `summary`: tagged values at the event's step.
    Summary(Vec<(String, SummaryValue)>),
    /// `session_log` with status START: TensorBoard drops the events of this run at
    /// steps ≥ this event's step written before it (a resumed run's orphaned epochs).
    SessionStart,
}

fn message(
    write: impl FnOnce(&mut CodedOutputStream<'_>) -> protobuf::Result<()>,
) -> protobuf::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut out = CodedOutputStream::vec(&mut bytes);
        write(&mut out)?;
        out.flush()?;
    }
    Ok(bytes)
}

fn histogram_bytes(h: &Histogram) -> protobuf::Result<Vec<u8>> {
    message(|o| {
        o.write_double(1, h.min)?;
        o.write_double(2, h.max)?;
        o.write_double(3, h.num)?;
        o.write_double(4, h.sum)?;
        o.write_double(5, h.sum_squares)?;
        o.write_repeated_packed_double(6, &h.bucket_limit)?;
        o.write_repeated_packed_double(7, &h.bucket)
    })
}

/// `SummaryMetadata { plugin_data { plugin_name: "text" } }` and a scalar `DT_STRING`
/// `TensorProto` holding `text`.
fn text_fields(o: &mut CodedOutputStream<'_>, text: &str) -> protobuf::Result<()> {
    let plugin_data = message(|p| p.write_string(1, "text"))?;
    let metadata = message(|m| m.write_bytes(1, &plugin_data))?;
    o.write_bytes(9, &metadata)?;
    const DT_STRING: i32 = 7;
    let tensor = message(|t| {
        t.write_enum(1, DT_STRING)?;
        // An empty TensorShapeProto: a scalar.
        t.write_bytes(2, &[])?;
        t.write_bytes(8, text.as_bytes())
    })?;
    o.write_bytes(8, &tensor)
}

fn summary_bytes(values: &[(String, SummaryValue)]) -> protobuf::Result<Vec<u8>> {
    message(|o| {
        for (tag, value) in values {
            let value = message(|v| {
                v.write_string(1, tag)?;
                match value {
                    SummaryValue::Scalar(x) => v.write_float(2, *x),
                    SummaryValue::Histogram(h) => v.write_bytes(5, &histogram_bytes(h)?),
                    SummaryValue::Text(t) => text_fields(v, t),
                }
            })?;
            o.write_bytes(1, &value)?;
        }
        Ok(())
    })
}

/// Encodes an `Event` at `wall_time` (seconds since the Unix epoch) and `step`.
/// Errors: none in practice (encoding into memory); rust-protobuf's error type is kept.
pub fn event_bytes(wall_time: f64, step: i64, body: &EventBody) -> protobuf::Result<Vec<u8>> {
    message(|o| {
        o.write_double(1, wall_time)?;
        o.write_int64(2, step)?;
        match body {
            EventBody::FileVersion => o.write_string(3, "brain.Event:2"),
            EventBody::Summary(values) => o.write_bytes(5, &summary_bytes(values)?),
            EventBody::SessionStart => {
                const START: i32 = 1;
                o.write_bytes(7, &message(|s| s.write_enum(1, START))?)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_event_bytes_by_hand() {
        let bytes = event_bytes(
            1.5,
            3,
            &EventBody::Summary(vec![("a".into(), SummaryValue::Scalar(2.0))]),
        )
        .unwrap();
        let mut expected = vec![0x09]; // field 1, fixed64
        expected.extend(1.5f64.to_le_bytes());
        expected.extend([0x10, 0x03]); // field 2, varint 3
        // field 5 (len 10): Summary { value (field 1, len 8): { tag "a", simple_value 2.0 } }
        expected.extend([0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, b'a', 0x15]);
        expected.extend(2.0f32.to_le_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn histogram_buckets_by_hand() {
        // Range [0, 4] in 4 buckets of width 1: edges 1, 2, 3, 4 (right-closed).
        let h = Histogram::of(&[0.0, 1.0, 1.5, 4.0, f32::NAN], 4).unwrap();
        assert_eq!(h.bucket_limit, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(h.bucket, vec![2.0, 1.0, 0.0, 1.0]);
        assert_eq!((h.min, h.max, h.num, h.sum, h.sum_squares), (0.0, 4.0, 4.0, 6.5, 19.25));
        let constant = Histogram::of(&[0.5, 0.5], 30).unwrap();
        assert_eq!((constant.bucket_limit, constant.bucket), (vec![0.5], vec![2.0]));
        assert_eq!(Histogram::of(&[f32::NAN], 30), None);
    }
}
