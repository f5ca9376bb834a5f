//! SQS message bodies -> S3 object records.
//!
//! The same S3 "object created" event reaches the queue in three shapes,
//! depending on how the queue is wired (all three were observed against AWS
//! and moto, see `notes/platform.md`):
//!
//! * an SNS `Notification` envelope whose `Message` is the S3 event *as a JSON
//!   string* (the NOAA `NewOFSObject` topic, and our own `NOSZarrUpdated`);
//! * the bare S3 event (S3 -> SQS directly, or SNS with `RawMessageDelivery`);
//! * the `s3:TestEvent` that S3 sends once when a notification is configured,
//!   bare or wrapped in SNS. It names no object, so it gets its own variant
//!   instead of an empty record list: callers should delete it, not retry it.
//!
//! Parsing goes through `serde_json::Value` rather than derived structs so
//! that every rejection can say exactly which field of which record was wrong;
//! a poison message ends up in a DLQ and the error text is all an operator has.

use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::key::clip;

/// One object named by an S3 event record, with the key already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Record {
    /// e.g. `ObjectCreated:Put`; kept so callers can ignore deletions.
    pub event_name: String,
    /// As sent (`2023-03-14T01:07:14.304Z`); only logged, so not parsed.
    pub event_time: String,
    pub bucket: String,
    /// Form-URL-decoded object key: the raw key can never be used directly
    /// (AWS encodes spaces as `+`, moto additionally encodes `/` as `%2F`).
    pub key: String,
    /// Absent in delete events and optional in moto.
    pub size: Option<u64>,
    pub etag: Option<String>,
    /// Orders events for one key; AWS sends it, moto does not.
    pub sequencer: Option<String>,
}

/// The `s3:TestEvent` S3 posts when a notification configuration is saved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestEvent {
    pub bucket: Option<String>,
    pub time: Option<String>,
}

/// What a message body announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Event {
    /// Never empty: an event without records is rejected as malformed.
    Records(Vec<S3Record>),
    TestEvent(TestEvent),
}

impl S3Event {
    /// Lets callers loop over objects without special-casing the test event.
    pub fn records(&self) -> &[S3Record] {
        match self {
            S3Event::Records(r) => r,
            S3Event::TestEvent(_) => &[],
        }
    }

    pub fn is_test_event(&self) -> bool {
        matches!(self, S3Event::TestEvent(_))
    }
}

/// Why a message body could not be turned into an [`S3Event`].
#[derive(Debug, Error)]
pub enum Error {
    #[error("message body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("message body is JSON but not an object (it is {0})")]
    NotAnObject(&'static str),
    #[error("SNS message has Type {0}; only \"Notification\" carries S3 events")]
    UnsupportedSnsType(String),
    #[error("SNS Notification has no Message string")]
    SnsNoMessage,
    #[error("SNS Message is not JSON: {0}")]
    SnsMessageNotJson(#[source] serde_json::Error),
    #[error("SNS Message is not an S3 event: {0}")]
    SnsMessageNotS3Event(String),
    #[error("message is not an S3 event or SNS envelope: {0}")]
    NotS3Event(String),
    #[error("S3 event Records is not an array (it is {0})")]
    RecordsNotArray(&'static str),
    #[error("S3 event has an empty Records array")]
    NoRecords,
    /// `index` is 1-based, as people count records in a log line.
    #[error("record {index} of {total} {problem}")]
    Record {
        index: usize,
        total: usize,
        problem: RecordProblem,
    },
}

/// What was wrong with one record; rendered after "record N of M".
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecordProblem {
    #[error("is not a JSON object")]
    NotAnObject,
    #[error("has no {0}")]
    Missing(&'static str),
    #[error("has {field} that is not {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("has s3.object.key {raw} that is not form-URL-encoded UTF-8: {reason}")]
    BadKey { raw: String, reason: DecodeError },
}

/// Why [`form_url_decode`] refused a string.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    #[error("'%' at byte {0} is not followed by two hex digits")]
    BadEscape(usize),
    #[error("decoded bytes are not UTF-8")]
    NotUtf8,
}

/// Parses an SQS message body (any of the three shapes in the module doc).
pub fn parse(body: &str) -> Result<S3Event, Error> {
    // A BOM is invisible in consoles and would otherwise read as "not JSON".
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    let value: Value = serde_json::from_str(body).map_err(Error::NotJson)?;
    let obj = value
        .as_object()
        .ok_or_else(|| Error::NotAnObject(json_kind(&value)))?;

    if let Some(ty) = obj.get("Type") {
        if ty.as_str() != Some("Notification") {
            return Err(Error::UnsupportedSnsType(clip(&ty.to_string())));
        }
        let inner = obj
            .get("Message")
            .and_then(Value::as_str)
            .ok_or(Error::SnsNoMessage)?;
        let inner: Value = serde_json::from_str(inner).map_err(Error::SnsMessageNotJson)?;
        return match classify(&inner) {
            Shape::Records(records) => parse_records(records),
            Shape::Test(obj) => Ok(S3Event::TestEvent(test_event(obj))),
            Shape::Other(why) => Err(Error::SnsMessageNotS3Event(why)),
        };
    }

    match classify(&value) {
        Shape::Records(records) => parse_records(records),
        Shape::Test(obj) => Ok(S3Event::TestEvent(test_event(obj))),
        Shape::Other(why) => Err(Error::NotS3Event(why)),
    }
}

/// Renders what the `dump` verb prints: the decoded records (not the raw
/// body, whose keys are still encoded) as pretty JSON, so an operator can see
/// exactly which objects a message would make the pipeline touch.
///
/// Records become an array of `{bucket, key, size, event, time}` objects; a
/// test event becomes a single `{"event": "s3:TestEvent", ...}` object.
pub fn dump(body: &str) -> Result<String, Error> {
    let value = match parse(body)? {
        S3Event::Records(records) => Value::Array(
            records
                .iter()
                .map(|r| {
                    json!({
                        "bucket": r.bucket,
                        "key": r.key,
                        "size": r.size,
                        "event": r.event_name,
                        "time": r.event_time,
                    })
                })
                .collect(),
        ),
        S3Event::TestEvent(t) => json!({
            "event": "s3:TestEvent",
            "bucket": t.bucket,
            "time": t.time,
        }),
    };
    // `{:#}` is serde_json's infallible pretty printer for `Value`.
    Ok(format!("{value:#}"))
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, then
/// `%XX` escapes. S3 event keys use this form on AWS and on moto.
///
/// Strict on malformed escapes (Python's `unquote_plus` would keep them
/// literally) because a key we cannot decode unambiguously is a key we might
/// index under the wrong name.
pub fn form_url_decode(s: &str) -> Result<String, DecodeError> {
    let bytes = s.as_bytes();
    // `percent_decode` keeps a malformed escape literally; find the first
    // one and refuse instead. A well-formed escape's digits are never `%`,
    // so every `%` is the start of an escape.
    for (i, &b) in bytes.iter().enumerate() {
        let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
        if b == b'%' && !(hex(i + 1) && hex(i + 2)) {
            return Err(DecodeError::BadEscape(i));
        }
    }
    // `+` is a space before decoding, so `%2B` stays a `+`.
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| DecodeError::NotUtf8)
}

enum Shape<'a> {
    Records(&'a Value),
    Test(&'a Map<String, Value>),
    Other(String),
}

fn classify(value: &Value) -> Shape<'_> {
    let Some(obj) = value.as_object() else {
        return Shape::Other(format!("it is {}, not an object", json_kind(value)));
    };
    if let Some(records) = obj.get("Records") {
        return Shape::Records(records);
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Shape::Test(obj);
    }
    Shape::Other("it has no Records array and is not an s3:TestEvent".to_owned())
}

fn test_event(obj: &Map<String, Value>) -> TestEvent {
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
    TestEvent {
        bucket: text("Bucket"),
        time: text("Time"),
    }
}

fn parse_records(records: &Value) -> Result<S3Event, Error> {
    let list = records
        .as_array()
        .ok_or_else(|| Error::RecordsNotArray(json_kind(records)))?;
    if list.is_empty() {
        return Err(Error::NoRecords);
    }
    let total = list.len();
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            parse_record(r).map_err(|problem| Error::Record {
                index: i + 1,
                total,
                problem,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(S3Event::Records)
}

fn parse_record(record: &Value) -> Result<S3Record, RecordProblem> {
    if !record.is_object() {
        return Err(RecordProblem::NotAnObject);
    }
    let raw_key = required_str(record, "s3.object.key")?;
    let key = form_url_decode(raw_key).map_err(|reason| RecordProblem::BadKey {
        raw: clip(&format!("{raw_key:?}")),
        reason,
    })?;
    let size = match lookup(record, "s3.object.size") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or(RecordProblem::WrongType {
            field: "s3.object.size",
            expected: "a non-negative integer",
        })?),
    };
    Ok(S3Record {
        event_name: required_str(record, "eventName")?.to_owned(),
        event_time: required_str(record, "eventTime")?.to_owned(),
        bucket: required_str(record, "s3.bucket.name")?.to_owned(),
        key,
        size,
        etag: optional_str(record, "s3.object.eTag")?,
        sequencer: optional_str(record, "s3.object.sequencer")?,
    })
}

/// Follows a dotted path; a non-object on the way counts as absent, which
/// reports the full path ("has no s3.object.key") instead of a fragment.
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, part| v.get(part))
}

fn required_str<'a>(record: &'a Value, path: &'static str) -> Result<&'a str, RecordProblem> {
    match lookup(record, path) {
        None | Some(Value::Null) => Err(RecordProblem::Missing(path)),
        Some(v) => v.as_str().ok_or(RecordProblem::WrongType {
            field: path,
            expected: "a string",
        }),
    }
}

fn optional_str(record: &Value, path: &'static str) -> Result<Option<String>, RecordProblem> {
    match lookup(record, path) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .map(|s| Some(s.to_owned()))
            .ok_or(RecordProblem::WrongType {
                field: path,
                expected: "a string",
            }),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// seed-README.md, `dump` / `extract_single` example (NewOFSObject).
    const SEED_NEW_OFS_OBJECT: &str = r#"{"Type": "Notification","MessageId": "64e0cdc6-ce97-53cb-90b2-914f059429c1","TopicArn": "arn:aws:sns:us-east-1:123901341784:NewOFSObject","Subject": "Amazon S3 Notification","Message": "{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"awsRegion\":\"us-east-1\",\"eventTime\":\"2023-03-14T01:07:14.304Z\",\"eventName\":\"ObjectCreated:Put\",\"userIdentity\":{\"principalId\":\"AWS:AIDAJSLYAQIR3HHVYDOK2\"},\"requestParameters\":{\"sourceIPAddress\":\"34.195.147.78\"},\"responseElements\":{\"x-amz-request-id\":\"NS093145WJSB3M5P\",\"x-amz-id-2\":\"TBLTM5eN3RpYYyVJS0d1fGVwhpsjED4Tw7eZMf/D3sYJJNVpWg3TRw7X/pZ9S/mYIE8NWOZy8hDFgjGGMNzYTE2YZ+3S88dfwN32jnoeVrA=\"},\"s3\":{\"s3SchemaVersion\":\"1.0\",\"configurationId\":\"NTY5YmEwY2QtYzE3Zi00NTQ2LTllZTQtNzE1ZTEwMmIxMGFl\",\"bucket\":{\"name\":\"noaa-ofs-pds\",\"ownerIdentity\":{\"principalId\":\"A2AJV00K47QOI1\"},\"arn\":\"arn:aws:s3:::noaa-ofs-pds\"},\"object\":{\"key\":\"tbofs.20230314/nos.tbofs.fields.n002.20230314.t00z.nc\",\"size\":20138396,\"eTag\":\"6b6b182fdbacb0cfc7d491c0f48c7d26\",\"sequencer\":\"00640FC8C21FD07CDB\"}}}]}","Timestamp": "2023-03-14T01:07:15.001Z","SignatureVersion": "1","Signature": "DsU2+uGwqEfGQ6EHSW/swtx6JqBplP5b0KXXSyPX4ewZMS29GaCtCGrowIsyW9nWAV3bI8tnD44/32wOU5Xvh1Xm2P1aocDuHkZAsSOi859OyaJcdyBIKT8txJbSo+X+ql6t/bO/pI/A0Cnjwn9pZDHul648UnQamL0jAyqWN+MWhGd8efO4dbrloq5Zi4wPI3KRWgE0L2aYg6IPXAHxm1S0u+996iL3MpxVrlGvLBdVFZXg14G53z83xAhlT2XmNzpcnHy9Pkl2a9LpXusesFNgyrsFmzq0cBXYAliSj0ALHxVSOpOK2sp4KL1UyKjy0HBwhUKv4pOdDTA02VQxmg==","SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-56e67fcb41f6fec09b0196692625d385.pem","UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123901341784:NewOFSObject:d8f7dac5-0db1-4541-a0fb-4e13b43299f1"}"#;

    /// seed-README.md, `update_model_run` example (NOSZarrUpdated).
    const SEED_NOS_ZARR_UPDATED: &str = r#"{"Type":"Notification","MessageId":"d24cf2d9-e674-5061-a67e-ae4fb7e2e2b5","TopicArn":"arn:aws:sns:us-east-1:579273261343:NOSZarrUpdated","Subject":"Amazon S3 Notification","Message":"{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"awsRegion\":\"us-east-1\",\"eventTime\":\"2023-03-23T13:08:37.449Z\",\"eventName\":\"ObjectCreated:Put\",\"userIdentity\":{\"principalId\":\"AWS:AIDAYNX3AQEPTDURMZLL6\"},\"requestParameters\":{\"sourceIPAddress\":\"172.31.93.205\"},\"responseElements\":{\"x-amz-request-id\":\"4RJP5678MYJ04MBR\",\"x-amz-id-2\":\"H3nlK66Ihxco0JZ5SvWNdvQccoyQICJ64FxTfVSeVoKJJMeoQLUPNvJJ10Xp7q4YiFQPppiK2kR2Fmrf+KOFw/rjMpz3uoX7\"},\"s3\":{\"s3SchemaVersion\":\"1.0\",\"configurationId\":\"nos-zarr-updated\",\"bucket\":{\"name\":\"nextgen-dmac\",\"ownerIdentity\":{\"principalId\":\"A3E5URXP2R44AP\"},\"arn\":\"arn:aws:s3:::nextgen-dmac\"},\"object\":{\"key\":\"nos/nos.dbofs.fields.f030.20230323.t12z.nc.zarr\",\"size\":42421,\"eTag\":\"38001514e00b8db822ff21c6545e5320\",\"sequencer\":\"00641C4F555597F27E\"}}}]}","Timestamp":"2023-03-23T13:08:38.797Z","SignatureVersion":"1","Signature":"YZWxIZjBDyzRQYN8JMGfCqUdP4sYaDFEyiIF/njLExYxKiGft6frBfYAo7Oa7L+R38Ly7tAAupavH9L4DfvSi2wvvSQvmifExaae/9hU6FR5WO87p6hkgtN7pZO4fy8umKq1jvMtnqUl+b3+bXVJHBghfT5Ca1wNsDo0juhbo6vPkaasFnHQuJj16ReMdKx+v699FjuOmIDJlHWVOI3JLJhP4xYpu4mh9TWt8U6L0ayJ8f4WM7rzmIIvIB59471GCNyuk1kMZUmH4tiO7AA/QS3GvA3pdDXh5zOkFhxSrP0V3rWSAbeaz0hukXACrx88hdljRuE2YNhtOVFMsOaBhg==","SigningCertURL":"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-56e67fcb41f6fec09b0196692625d385.pem","UnsubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe\u0026SubscriptionArn=arn:aws:sns:us-east-1:579273261343:NOSZarrUpdated:7a5b63a9-dea2-462e-91bb-993e8a3ccd4e"}"#;

    /// platform.md: moto S3 -> SQS direct, PutObject of `in/a b+c.txt`.
    const MOTO_PLAIN: &str = r#"{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-25T12:40:45.818Z", "eventName": "ObjectCreated:Put", "s3": {"s3SchemaVersion": "1.0", "configurationId": "n1", "bucket": {"name": "b-direct", "arn": "arn:aws:s3:::b-direct"}, "object": {"key": "in%2Fa+b%2Bc.txt", "size": 5, "eTag": "5d41402abc4b2a76b9719d911017c592"}}}]}"#;

    /// platform.md: the test event moto (and AWS) enqueue on configuration.
    const MOTO_TEST_EVENT: &str = r#"{"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-25T12:40:45.000Z", "Bucket": "b-direct"}"#;

    /// Wraps an S3 event the way moto's SNS does without RawMessageDelivery:
    /// pretty-printed envelope, Message as a JSON string, SignatureVersion "2".
    fn moto_sns(inner: &str) -> String {
        let envelope = json!({
            "Type": "Notification",
            "MessageId": "5c1d5b4e-3a3c-4f3c-9b0a-6e1c2f1b7d11",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": inner,
            "Timestamp": "2026-11-25T12:40:45.900Z",
            "SignatureVersion": "2",
            "Signature": "EXAMPLEpH+..",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
            "UnsubscribeURL": "http://localhost:5055/?Action=Unsubscribe",
        });
        format!("{envelope:#}")
    }

    fn one(body: &str) -> S3Record {
        match parse(body) {
            Ok(S3Event::Records(mut r)) if r.len() == 1 => r.remove(0),
            other => panic!("expected one record, got {other:?}"),
        }
    }

    #[test]
    fn seed_new_ofs_object() {
        let r = one(SEED_NEW_OFS_OBJECT);
        assert_eq!(
            r,
            S3Record {
                event_name: "ObjectCreated:Put".into(),
                event_time: "2023-03-14T01:07:14.304Z".into(),
                bucket: "noaa-ofs-pds".into(),
                key: "tbofs.20230314/nos.tbofs.fields.n002.20230314.t00z.nc".into(),
                size: Some(20_138_396),
                etag: Some("6b6b182fdbacb0cfc7d491c0f48c7d26".into()),
                sequencer: Some("00640FC8C21FD07CDB".into()),
            }
        );
    }

    #[test]
    fn seed_nos_zarr_updated() {
        let r = one(SEED_NOS_ZARR_UPDATED);
        assert_eq!(r.bucket, "nextgen-dmac");
        assert_eq!(r.key, "nos/nos.dbofs.fields.f030.20230323.t12z.nc.zarr");
        assert_eq!(r.size, Some(42_421));
        assert_eq!(r.etag.as_deref(), Some("38001514e00b8db822ff21c6545e5320"));
        assert_eq!(r.sequencer.as_deref(), Some("00641C4F555597F27E"));
        assert_eq!(r.event_time, "2023-03-23T13:08:37.449Z");
    }

    #[test]
    fn moto_plain_decodes_quote_plus_key_and_missing_optionals() {
        let r = one(MOTO_PLAIN);
        assert_eq!(r.key, "in/a b+c.txt");
        assert_eq!(r.bucket, "b-direct");
        assert_eq!(r.size, Some(5));
        assert_eq!(r.sequencer, None);
        assert_eq!(r.event_name, "ObjectCreated:Put");
    }

    #[test]
    fn raw_message_delivery_and_sns_wrapping_agree() {
        // RawMessageDelivery=true puts the S3 event itself in the SQS body
        // (MOTO_PLAIN); without it the same event arrives in an envelope.
        assert_eq!(one(MOTO_PLAIN), one(&moto_sns(MOTO_PLAIN)));
    }

    #[test]
    fn moto_sns_wrapped() {
        let r = one(&moto_sns(MOTO_PLAIN));
        assert_eq!(r.key, "in/a b+c.txt");
    }

    #[test]
    fn test_event_bare_and_wrapped() {
        let want = S3Event::TestEvent(TestEvent {
            bucket: Some("b-direct".into()),
            time: Some("2026-11-25T12:40:45.000Z".into()),
        });
        let bare = parse(MOTO_TEST_EVENT).ok();
        assert_eq!(bare.as_ref(), Some(&want));
        assert_eq!(parse(&moto_sns(MOTO_TEST_EVENT)).ok(), Some(want));
        assert!(bare.as_ref().is_some_and(S3Event::is_test_event));
        assert!(bare.is_some_and(|e| e.records().is_empty()));
    }

    #[test]
    fn aws_test_event_with_extra_fields() {
        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2023-03-14T00:00:00.000Z","Bucket":"noaa-ofs-pds","RequestId":"X","HostId":"Y"}"#;
        assert!(parse(body).is_ok_and(|e| e.is_test_event()));
    }

    #[test]
    fn multiple_records_keep_order() {
        let body = r#"{"Records":[
            {"eventName":"ObjectCreated:Put","eventTime":"t1","s3":{"bucket":{"name":"b"},"object":{"key":"k1","size":1}}},
            {"eventName":"ObjectCreated:CompleteMultipartUpload","eventTime":"t2","s3":{"bucket":{"name":"b"},"object":{"key":"k2"}}},
            {"eventName":"ObjectRemoved:Delete","eventTime":"t3","s3":{"bucket":{"name":"b"},"object":{"key":"k3","sequencer":"0A"}}}
        ]}"#;
        let ev = parse(body).ok();
        let keys: Vec<&str> = ev
            .as_ref()
            .map(|e| e.records().iter().map(|r| r.key.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["k1", "k2", "k3"]);
        let r = ev.as_ref().map(S3Event::records).unwrap_or_default();
        assert_eq!(r.get(1).and_then(|r| r.size), None);
        assert_eq!(r.get(2).and_then(|r| r.sequencer.as_deref()), Some("0A"));
    }

    #[test]
    fn key_decoding_aws_and_moto_forms_agree() {
        // AWS keeps '/', moto encodes it; both encode space as '+'.
        for raw in ["dir/a+b%2Bc.nc", "dir%2Fa+b%2Bc.nc"] {
            assert_eq!(form_url_decode(raw), Ok("dir/a b+c.nc".to_owned()));
        }
        assert_eq!(form_url_decode("%C3%A9t%c3%a9"), Ok("été".to_owned()));
        assert_eq!(form_url_decode(""), Ok(String::new()));
        assert_eq!(form_url_decode("100%"), Err(DecodeError::BadEscape(3)));
        assert_eq!(form_url_decode("%2"), Err(DecodeError::BadEscape(0)));
        assert_eq!(form_url_decode("a%zz"), Err(DecodeError::BadEscape(1)));
        assert_eq!(form_url_decode("%FF"), Err(DecodeError::NotUtf8));
        // Non-ASCII passes through unencoded, and '%' inside it is still checked.
        assert_eq!(form_url_decode("é+é"), Ok("é é".to_owned()));
    }

    fn err(body: &str) -> String {
        match parse(body) {
            Ok(v) => panic!("expected an error for {body:?}, got {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        let rec = |s3: &str| {
            format!(
                r#"{{"Records":[{{"eventName":"ObjectCreated:Put","eventTime":"t","s3":{s3}}}]}}"#
            )
        };
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "not JSON"),
            ("not json".into(), "not JSON"),
            ("{\"Records\":[".into(), "not JSON"),
            ("[]".into(), "not an object (it is an array)"),
            ("42".into(), "not an object (it is a number)"),
            ("null".into(), "not an object (it is null)"),
            ("{}".into(), "no Records array"),
            (r#"{"Event":"s3:Other"}"#.into(), "not an s3:TestEvent"),
            (r#"{"Records":null}"#.into(), "Records is not an array (it is null)"),
            (r#"{"Records":{}}"#.into(), "Records is not an array (it is an object)"),
            (r#"{"Records":[]}"#.into(), "empty Records"),
            (r#"{"Records":[1]}"#.into(), "record 1 of 1 is not a JSON object"),
            (rec(r#"{"bucket":{"name":"b"},"object":{}}"#), "record 1 of 1 has no s3.object.key"),
            (rec(r#"{"bucket":{"name":"b"}}"#), "has no s3.object.key"),
            (rec(r#"{"bucket":{"name":"b"},"object":{"key":null}}"#), "has no s3.object.key"),
            (rec(r#"{"bucket":{"name":"b"},"object":{"key":7}}"#), "s3.object.key that is not a string"),
            (rec(r#"{"bucket":{},"object":{"key":"k"}}"#), "has no s3.bucket.name"),
            (rec(r#""s3""#), "has no s3.object.key"),
            (rec(r#"{"bucket":{"name":"b"},"object":{"key":"k","size":-1}}"#), "s3.object.size that is not a non-negative integer"),
            (rec(r#"{"bucket":{"name":"b"},"object":{"key":"k","size":"5"}}"#), "s3.object.size"),
            (rec(r#"{"bucket":{"name":"b"},"object":{"key":"k","size":1.5}}"#), "s3.object.size"),
            (rec(r#"{"bucket":{"name":"b"},"object":{"key":"k","eTag":1}}"#), "s3.object.eTag that is not a string"),
            (rec(r#"{"bucket":{"name":"b"},"object":{"key":"a%zz"}}"#), "not form-URL-encoded UTF-8"),
            (r#"{"Records":[{"eventTime":"t","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#.into(), "has no eventName"),
            (r#"{"Records":[{"eventName":"x","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#.into(), "has no eventTime"),
            (r#"{"Type":"SubscriptionConfirmation","Message":"x"}"#.into(), "Type \"SubscriptionConfirmation\""),
            (r#"{"Type":5}"#.into(), "Type 5"),
            (r#"{"Type":"Notification"}"#.into(), "no Message string"),
            (r#"{"Type":"Notification","Message":{"Records":[]}}"#.into(), "no Message string"),
            (r#"{"Type":"Notification","Message":"hello"}"#.into(), "SNS Message is not JSON"),
            (r#"{"Type":"Notification","Message":"{}"}"#.into(), "SNS Message is not an S3 event"),
            (r#"{"Type":"Notification","Message":"[1]"}"#.into(), "SNS Message is not an S3 event: it is an array"),
            (r#"{"Type":"Notification","Message":"{\"Records\":[]}"}"#.into(), "empty Records"),
        ];
        for (body, want) in &cases {
            let got = err(body);
            assert!(got.contains(want), "{body:?}: {got:?} lacks {want:?}");
        }
    }

    #[test]
    fn second_bad_record_is_named() {
        let body = r#"{"Records":[
            {"eventName":"e","eventTime":"t","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}},
            {"eventName":"e","eventTime":"t","s3":{"bucket":{"name":"b"},"object":{}}},
            {"eventName":"e","eventTime":"t","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}
        ]}"#;
        assert_eq!(err(body), "record 2 of 3 has no s3.object.key");
        assert!(matches!(
            parse(body),
            Err(Error::Record {
                index: 2,
                total: 3,
                problem: RecordProblem::Missing("s3.object.key")
            })
        ));
    }

    #[test]
    fn huge_bad_values_are_clipped_in_errors() {
        let key = format!("{}%zz", "a".repeat(10_000));
        let body = json!({"Records":[{"eventName":"e","eventTime":"t","s3":{"bucket":{"name":"b"},"object":{"key":key}}}]});
        let msg = err(&body.to_string());
        assert!(msg.len() < 400, "{} bytes", msg.len());
    }

    #[test]
    fn bom_and_whitespace_are_tolerated() {
        let body = format!("\u{feff}\n  {MOTO_PLAIN}\n");
        assert_eq!(one(&body).key, "in/a b+c.txt");
    }

    #[test]
    fn dump_prints_decoded_records() {
        let out = dump(SEED_NEW_OFS_OBJECT).unwrap_or_default();
        let v: Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(
            v,
            json!([{
                "bucket": "noaa-ofs-pds",
                "key": "tbofs.20230314/nos.tbofs.fields.n002.20230314.t00z.nc",
                "size": 20138396,
                "event": "ObjectCreated:Put",
                "time": "2023-03-14T01:07:14.304Z",
            }])
        );
        assert!(out.contains('\n'), "pretty-printed");

        let moto: Value =
            serde_json::from_str(&dump(MOTO_PLAIN).unwrap_or_default()).unwrap_or_default();
        assert_eq!(moto.pointer("/0/key"), Some(&json!("in/a b+c.txt")));

        let test: Value =
            serde_json::from_str(&dump(MOTO_TEST_EVENT).unwrap_or_default()).unwrap_or_default();
        assert_eq!(
            test,
            json!({"event":"s3:TestEvent","bucket":"b-direct","time":"2026-11-25T12:40:45.000Z"})
        );
        assert!(dump("nope").is_err());
    }

    use crate::test_rng::Rng;

    #[test]
    fn never_panics_on_prefixes_mutations_or_noise() {
        let seeds = [
            SEED_NEW_OFS_OBJECT.to_owned(),
            SEED_NOS_ZARR_UPDATED.to_owned(),
            MOTO_PLAIN.to_owned(),
            MOTO_TEST_EVENT.to_owned(),
            moto_sns(MOTO_PLAIN),
        ];
        // Every truncated prefix: none of them is a complete message.
        for seed in &seeds {
            for (cut, _) in seed.char_indices() {
                let prefix = seed.get(..cut).unwrap_or_default();
                assert!(parse(prefix).is_err(), "prefix {cut} parsed");
                let _ = dump(prefix);
            }
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let alphabet = b"{}[]\":,.%+\\/0123456789aefklnrsuTRE -\x00\xff";
        for round in 0..20_000 {
            let seed = seeds
                .get(round % seeds.len())
                .map(String::as_bytes)
                .unwrap_or_default();
            let mut bytes = seed.to_vec();
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len() + 1);
                let c = alphabet
                    .get(rng.below(alphabet.len()))
                    .copied()
                    .unwrap_or(b'x');
                match rng.below(3) {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    1 if at < bytes.len() => {
                        if let Some(b) = bytes.get_mut(at) {
                            *b = c;
                        }
                    }
                    _ => bytes.insert(at, c),
                }
            }
            let _ = parse(&String::from_utf8_lossy(&bytes));
            // Pure noise too.
            let noise: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            let _ = dump(&String::from_utf8_lossy(&noise));
        }
    }
}
