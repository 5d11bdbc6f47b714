//! What S3's refusals mean to a reader of the journal: one line per failed request,
//! naming the object, S3's code and, where a permission is missing, which.

use aws_sdk_s3::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use super::S3Sink;
use crate::sink::{Sink, SinkError};

impl S3Sink {
    /// The error of a request that failed for good (its retries spent).
    pub(super) fn remote<E>(&self, op: &'static str, key: &str, err: SdkError<E>) -> SinkError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let location = self.location(key);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err
            .as_service_error()
            .and_then(|e| e.code().map(str::to_string));
        // 412: the If-None-Match: * precondition failed, the key is taken.
        if status == Some(412) || code.as_deref() == Some("PreconditionFailed") {
            return SinkError::Exists { location };
        }
        let text = err.as_service_error().and_then(|e| e.message());
        // The SDK's own rendering of a service error includes the raw response; the
        // code, message and status say all a reader of the log needs.
        let mut message = match (&code, text) {
            (Some(code), Some(text)) => format!("{code}: {text}"),
            (Some(code), None) => code.clone(),
            _ => DisplayErrorContext(&err).to_string(),
        };
        if status == Some(403) {
            if let Some(hint) = kms_hint(text.unwrap_or_default()) {
                message = format!("{message}; {hint}");
            }
        }
        let message = match status {
            Some(status) => format!("{message} (HTTP {status})"),
            None => message,
        };
        SinkError::Remote {
            op,
            location,
            message,
        }
    }
}

/// What a 403 that names a KMS action is missing. S3 encrypts an SSE-KMS object with a
/// data key from KMS, under the caller's permissions: a write needs
/// kms:GenerateDataKey, and a multipart one kms:Decrypt too (to read the data key back
/// for each part).
fn kms_hint(message: &str) -> Option<String> {
    let at = message.find("kms:")?;
    let action: String = message[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':')
        .collect();
    let action = if action.len() > "kms:".len() {
        action
    } else {
        "kms:GenerateDataKey".to_string()
    };
    Some(format!(
        "the credentials lack {action} on the bucket's KMS key: writing to an SSE-KMS bucket needs kms:GenerateDataKey, and multipart uploads kms:Decrypt, on that key (iam-policy-kms.json)"
    ))
}

/// Logs each answer the SDK may retry (5xx, throttling, a refused clock), which it
/// otherwise does silently: how often S3 was busy is worth seeing.
#[derive(Debug)]
pub(super) struct LogRetriedAnswers;

/// The path of the attempt in flight: the request has been sent by the time its answer
/// is read, so it is noted on the way out.
#[derive(Debug, Clone)]
struct AttemptPath(String);

impl Storable for AttemptPath {
    type Storer = StoreReplace<Self>;
}

impl Intercept for LogRetriedAnswers {
    fn name(&self) -> &'static str {
        "LogRetriedAnswers"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let path = context
            .request()
            .uri()
            .split('?')
            .next()
            .unwrap_or_default();
        cfg.interceptor_state()
            .store_put(AttemptPath(path.to_string()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg.load::<Metadata>().map_or("request", |m| m.name());
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let path = cfg.load::<AttemptPath>().map_or("", |p| p.0.as_str());
        let Some(response) = context.response() else {
            // No answer: the connection failed or was cut, perhaps after the request
            // did its work. The retry then meets it (see `identity`).
            if let Some(Err(error)) = context.output_or_error() {
                if error.is_connector_error() || error.is_timeout_error() {
                    let error = DisplayErrorContext(error);
                    tracing::warn!(
                        op,
                        attempt,
                        "S3 gave no answer to {op} {path} (attempt {attempt}): {error}; the SDK retries it within its attempts"
                    );
                }
            }
            return Ok(());
        };
        let status = response.status().as_u16();
        // Only an error's document is read: a successful listing is not searched.
        let code = match status {
            400.. => error_code(response.body().bytes().unwrap_or_default()),
            _ => None,
        }
        .unwrap_or_default();
        let retried = status >= 500 || status == 429 || code == "RequestTimeTooSkewed";
        if !retried {
            return Ok(());
        }
        let date = response.headers().get("date").unwrap_or("?");
        tracing::warn!(
            op,
            status,
            code,
            attempt,
            "S3 answered {op} {path} with HTTP {status} {code} (attempt {attempt}, server time {date}); the SDK retries it within its attempts"
        );
        Ok(())
    }
}

/// The `<Code>` of an S3 error document.
fn error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(text[start..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kms_refusal_names_the_missing_action() {
        let m = "User: arn:aws:sts::1:assumed-role/r/i is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:1:key/k";
        assert!(kms_hint(m)
            .unwrap()
            .starts_with("the credentials lack kms:Decrypt "));
        assert!(kms_hint("Access Denied").is_none());
    }

    #[test]
    fn error_codes_are_read_from_the_document() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce</Message></Error>";
        assert_eq!(error_code(body).as_deref(), Some("SlowDown"));
        assert_eq!(error_code(b""), None);
    }
}
