//! `kerchunk-nos dead-letter --queue URL MESSAGE`: hand a notification that
//! could not be processed to a dead-letter queue.
//!
//! argo-events' SQS EventSource deletes a message as soon as it has
//! dispatched the trigger, so on the Argo path a workflow that fails for good
//! would otherwise leave the notification nowhere. The WorkflowTemplates'
//! exit handler runs this verb with the workflow's `message` parameter when
//! the workflow did not succeed. The body is sent byte for byte as given, so
//! a redrive of the dead-letter queue to the source queue (SQS
//! `StartMessageMoveTask`, or the console's "redrive") feeds the same
//! notification to the pipeline again.
//!
//! The MD5 digest SQS returns for the body it stored is compared with the
//! digest of what was sent: a mismatch (the body was altered on the way)
//! is a transient failure, so the exit handler retries and sends it again.

use std::fmt::Write as _;

use md5::{Digest, Md5};
use thiserror::Error;

/// Why a message could not be dead-lettered; decides the exit code.
#[derive(Debug, Error)]
pub enum DeadLetterError {
    /// Retrying cannot help (empty body, no such queue, access denied).
    #[error("{0}")]
    Permanent(String),
    /// Network, throttling, SQS 5xx, digest mismatch: worth retrying.
    #[error("{0}")]
    Transient(String),
}

impl DeadLetterError {
    /// The CLI exit code: 1 permanent, 3 transient.
    pub fn exit_code(&self) -> u8 {
        match self {
            DeadLetterError::Permanent(_) => 1,
            DeadLetterError::Transient(_) => 3,
        }
    }
}

/// What was sent, printed as JSON by the CLI.
#[derive(Debug, serde::Serialize)]
pub struct Sent {
    pub queue: String,
    pub message_id: String,
    pub md5_of_body: String,
    pub bytes: usize,
}

/// Lower-case hex MD5 of `body`, as SQS reports `MD5OfMessageBody` (and S3
/// the ETag of a single-part upload).
pub fn md5_hex(body: impl AsRef<[u8]>) -> String {
    let digest = Md5::digest(body.as_ref());
    let mut s = String::with_capacity(32);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Sends `body` unchanged to the queue at `queue_url`.
pub async fn send(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    body: &str,
) -> Result<Sent, DeadLetterError> {
    // SQS rejects an empty body; an empty `message` parameter means the
    // workflow was submitted without a notification, nothing to keep.
    if body.is_empty() {
        return Err(DeadLetterError::Permanent(format!(
            "{queue_url}: empty message body, nothing to dead-letter"
        )));
    }
    let out = sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| sqs_error(queue_url, e))?;
    let want = md5_hex(body);
    match out.md5_of_message_body() {
        Some(got) if !got.eq_ignore_ascii_case(&want) => {
            return Err(DeadLetterError::Transient(format!(
                "{queue_url}: SQS stored a body with MD5 {got:?}, sent {want:?}"
            )));
        }
        Some(_) => {}
        // SQS always reports it; an SQS-compatible server might not. The
        // message was accepted, so a retry would only duplicate it.
        None => tracing::warn!(queue = queue_url, "no MD5OfMessageBody to verify the body"),
    }
    Ok(Sent {
        queue: queue_url.to_string(),
        message_id: out.message_id().unwrap_or("").to_string(),
        md5_of_body: want,
        bytes: body.len(),
    })
}

/// Maps an SDK error by HTTP status / error code, as the S3 store does.
fn sqs_error<E>(
    queue_url: &str,
    err: aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> DeadLetterError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
    let status = err.raw_response().map(|r| r.status().as_u16());
    let detail = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            let text = se.err().message().unwrap_or("");
            let throttled = code.contains("Throttl") || code == "RequestThrottled";
            match status {
                Some(s) if throttled || s == 408 || s == 429 || s >= 500 => {
                    DeadLetterError::Transient(format!("{queue_url}: HTTP {s}: {code}"))
                }
                Some(s) => {
                    DeadLetterError::Permanent(format!("{queue_url}: HTTP {s}: {code}: {text}"))
                }
                None => DeadLetterError::Transient(format!("{queue_url}: {detail}")),
            }
        }
        SdkError::ConstructionFailure(_) => {
            DeadLetterError::Permanent(format!("{queue_url}: {detail}"))
        }
        // Timeouts, connection failures, broken bodies, unparseable replies.
        _ => DeadLetterError::Transient(format!("{queue_url}: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc1321_vectors() {
        assert_eq!(md5_hex("a"), "0cc175b9c0f1b6a831c399e269772661");
        assert_eq!(
            md5_hex("message digest"),
            "f96b697d7cb7938d525a2f31aaf161d0"
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(DeadLetterError::Permanent(String::new()).exit_code(), 1);
        assert_eq!(DeadLetterError::Transient(String::new()).exit_code(), 3);
    }
}
