//! Classification of AWS SDK errors into [`BlobErrorKind`]: the only place that looks at HTTP
//! status codes and S3 error codes, so that callers never do.
//!
//! | SDK error | kind |
//! |---|---|
//! | 404 / `NoSuchKey` | NotFound |
//! | `NoSuchBucket` | Unavailable (a broken deployment, not a missing blob) |
//! | 401, 403 (bad key, bad signature, clock skew, policy) | Unauthorized |
//! | connect/dispatch failure, timeout, broken response, 408, 429, 5xx | Unavailable |
//! | request construction failure, any other status | Internal |
//!
//! Messages keep the SDK's full error chain (for logs) and must never include credentials; the
//! SDK's error display does not contain them.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::{BlobError, BlobErrorKind};

/// Classifies the failure of `operation` (e.g. `"GetObject"`) on `object`.
pub(super) fn classify<E>(operation: &str, object: &str, err: SdkError<E>) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = kind_of(&err);
    BlobError::new(
        kind,
        format!("{operation} {object}: {}", DisplayErrorContext(&err)),
    )
}

/// Whether a ranged GET failed only because the range starts at or beyond the end (HTTP 416).
pub(super) fn is_unsatisfiable_range<E>(err: &SdkError<E>) -> bool {
    matches!(err, SdkError::ServiceError(_)) && status(err) == Some(416)
}

fn kind_of<E: ProvideErrorMetadata>(err: &SdkError<E>) -> BlobErrorKind {
    match err {
        SdkError::ConstructionFailure(_) => BlobErrorKind::Internal,
        SdkError::DispatchFailure(failure) if failure.is_user() => BlobErrorKind::Internal,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            BlobErrorKind::Unavailable
        }
        SdkError::ServiceError(service) => {
            kind_of_response(status(err).unwrap_or(0), service.err().code())
        }
        _ => BlobErrorKind::Internal,
    }
}

/// HEAD requests have no body, so `code` is `None` for them and only the status counts.
fn kind_of_response(status: u16, code: Option<&str>) -> BlobErrorKind {
    match (status, code) {
        (_, Some("NoSuchBucket")) => BlobErrorKind::Unavailable,
        (404, _) | (_, Some("NoSuchKey")) => BlobErrorKind::NotFound,
        (401 | 403, _) => BlobErrorKind::Unauthorized,
        (408 | 429 | 500..=599, _) => BlobErrorKind::Unavailable,
        (_, Some("SlowDown" | "RequestTimeout" | "ServiceUnavailable")) => {
            BlobErrorKind::Unavailable
        }
        _ => BlobErrorKind::Internal,
    }
}

fn status<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response()
        .map(|response| response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_map_to_kinds() {
        use BlobErrorKind::*;
        let cases = [
            (404, Some("NoSuchKey"), NotFound),
            (404, None, NotFound),
            (404, Some("NoSuchBucket"), Unavailable),
            (403, Some("AccessDenied"), Unauthorized),
            (403, Some("SignatureDoesNotMatch"), Unauthorized),
            (403, None, Unauthorized),
            (401, None, Unauthorized),
            (500, Some("InternalError"), Unavailable),
            (503, Some("SlowDown"), Unavailable),
            (429, None, Unavailable),
            (400, Some("InvalidRequest"), Internal),
            (416, Some("InvalidRange"), Internal),
        ];
        for (status, code, kind) in cases {
            assert_eq!(kind_of_response(status, code), kind, "{status} {code:?}");
        }
    }
}
