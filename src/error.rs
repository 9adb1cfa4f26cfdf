//! The one error type every layer returns, and the one table that maps it to the wire.
//!
//! Each variant names an Elasticsearch exception type. [`Error::es_type`] and [`Error::code`]
//! match exhaustively, so a new variant cannot reach a client unmapped; [`ErrorCode`] holds the
//! HTTP status and gRPC code of each class of failure, once.
//!
//! Longer than the ~400-line guide on purpose: it is the one table of outcomes, and its value
//! is that every variant, its class, type and reason text are read in one place.

use std::fmt;

/// One failed rule of a request, with the request field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The request field at fault (used as the gRPC BadRequest field).
    pub field: &'static str,
    /// Elasticsearch's message for the failure.
    pub message: String,
}

impl Violation {
    /// A violation of `field` with Elasticsearch's `message`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// What a delete or invalidation found nothing of. Elasticsearch answers these 404s with the
/// endpoint's own body rather than an error envelope; the HTTP renderer knows each shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No such native user.
    User(String),
    /// No such native role.
    Role(String),
    /// No such token (by access or refresh token).
    Token,
    /// None of these application privileges of `application`.
    ApplicationPrivileges {
        /// The application.
        application: String,
        /// The privilege names asked for.
        names: Vec<String>,
    },
}

/// Which `WWW-Authenticate` challenge a 401 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// The default challenges: Basic, then Bearer.
    Default,
    /// The single Bearer challenge Elasticsearch sends for an expired or invalidated token.
    ExpiredToken,
}

impl Challenge {
    /// The `WWW-Authenticate` header values, in the order Elasticsearch sends them.
    pub fn header_values(self) -> &'static [&'static str] {
        match self {
            Challenge::Default => &[
                r#"Basic realm="security", charset="UTF-8""#,
                r#"Bearer realm="security""#,
            ],
            Challenge::ExpiredToken => &[
                r#"Bearer realm="security", error="invalid_token", error_description="The access token expired""#,
            ],
        }
    }
}

/// A class of failure and its status on each protocol, side by side (quickwit's
/// `ServiceErrorCode`): what makes HTTP and gRPC agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is malformed or breaks a rule: 400, INVALID_ARGUMENT.
    BadRequest,
    /// No route has the path: 400 (Elasticsearch's choice), UNIMPLEMENTED.
    NoRoute,
    /// Wrong method for the path: 405, UNIMPLEMENTED.
    MethodNotAllowed,
    /// Unsupported body media type: 406, INVALID_ARGUMENT.
    NotAcceptable,
    /// The request did not arrive in time: 408, DEADLINE_EXCEEDED.
    Timeout,
    /// The body is over the limit: 413, RESOURCE_EXHAUSTED.
    TooLarge,
    /// A bounded pool or the in-flight budget is full: 429, RESOURCE_EXHAUSTED.
    TooManyRequests,
    /// No usable credentials: 401, UNAUTHENTICATED.
    Unauthenticated,
    /// Authenticated but not allowed: 403, PERMISSION_DENIED.
    Forbidden,
    /// Nothing with that name or uid: 404, NOT_FOUND.
    NotFound,
    /// A compare-and-set lost: 409, ABORTED.
    Conflict,
    /// A bug or an unreadable record: 500, INTERNAL.
    Internal,
    /// The store is down: 503, UNAVAILABLE.
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::NoRoute => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::NotAcceptable => 406,
            ErrorCode::Timeout => 408,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }

    /// The gRPC status code.
    pub fn grpc_code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            ErrorCode::BadRequest | ErrorCode::NotAcceptable => Code::InvalidArgument,
            ErrorCode::NoRoute | ErrorCode::MethodNotAllowed => Code::Unimplemented,
            ErrorCode::Timeout => Code::DeadlineExceeded,
            ErrorCode::TooLarge | ErrorCode::TooManyRequests => Code::ResourceExhausted,
            ErrorCode::Unauthenticated => Code::Unauthenticated,
            ErrorCode::Forbidden => Code::PermissionDenied,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::Conflict => Code::Aborted,
            ErrorCode::Internal => Code::Internal,
            ErrorCode::Unavailable => Code::Unavailable,
        }
    }
}

/// Every error a client can see.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A request failed `validate()`: `action_request_validation_exception`, 400.
    ActionValidation(Vec<Violation>),
    /// Elasticsearch's plain `ValidationException` (user writes): `validation_exception`, 400.
    Validation(Vec<Violation>),
    /// `illegal_argument_exception`, 400.
    IllegalArgument(String),
    /// `parse_exception`, 400 (for example a missing required body).
    Parse(String),
    /// `x_content_parse_exception`, 400: the body did not fit the endpoint's strict parser.
    XContentParse(String),
    /// `document_parsing_exception`, 400: the document does not fit the index mapping.
    DocumentParsing(String),
    /// `status_exception` with status 400.
    BadStatus(String),
    /// A malformed `Accept`/`Content-Type` header or a bad compatible-with version:
    /// `media_type_header_exception`, 400, naming the headers at fault, whose cause says what
    /// was wrong (`illegal_argument_exception` for syntax, `status_exception` for versions).
    MediaTypeHeader {
        /// The headers named in the reason, e.g. `Accept` or `Accept, Content-Type`.
        headers: &'static str,
        /// The cause's Elasticsearch type.
        cause_type: &'static str,
        /// The cause's reason.
        detail: String,
    },
    /// A token-endpoint failure in OAuth2's own format (RFC 6749 §5.2), 400: `error` is
    /// `invalid_request`, `unsupported_grant_type` or `invalid_grant`.
    OAuth {
        /// The OAuth2 error code.
        error: &'static str,
        /// The `error_description`.
        description: String,
        /// Field violations behind a validation failure (for gRPC details).
        violations: Vec<Violation>,
    },
    /// The request body exceeded the configured limit: 413.
    ContentTooLong {
        /// The body size received (or at least how much was read before giving up).
        length: u64,
        /// The configured limit in bytes.
        limit: u64,
    },
    /// `security_exception`, 401.
    Unauthenticated {
        /// Elasticsearch's reason text.
        reason: String,
        /// The `WWW-Authenticate` challenge to send.
        challenge: Challenge,
        /// Credentials that were presented but could not be used, e.g. `oauth2 token: invalid token`.
        unsuccessful_credentials: Option<String>,
    },
    /// `security_exception`, 403.
    Forbidden(String),
    /// `resource_not_found_exception`, 404.
    ResourceNotFound(String),
    /// Specific users or roles were asked for and none exists: 404, which Elasticsearch's REST
    /// layer answers with an empty object `{}` rather than an error envelope.
    NoneFound(String),
    /// Nothing to delete or invalidate: 404 with the endpoint's own body on HTTP, NOT_FOUND on
    /// gRPC.
    NothingFound(Missing),
    /// `document_missing_exception`, 404, for the profile with this uid.
    DocumentMissing {
        /// The profile uid.
        uid: String,
    },
    /// `version_conflict_engine_exception`, 409.
    VersionConflict {
        /// The profile uid.
        uid: String,
        /// The sequence number the caller required.
        required_seq_no: i64,
        /// The primary term the caller required.
        required_primary_term: i64,
        /// The document's current sequence number.
        current_seq_no: i64,
        /// The document's current primary term.
        current_primary_term: i64,
    },
    /// Work refused because its bounded pool and queue are full:
    /// `es_rejected_execution_exception`, 429 (RESOURCE_EXHAUSTED on gRPC).
    Rejected(String),
    /// Too many request bytes in flight at once: `circuit_breaking_exception`, 429.
    CircuitBreaking(String),
    /// The request line is longer than allowed: `too_long_http_line_exception`, 400.
    TooLongHttpLine(String),
    /// The request headers are larger than allowed: `too_long_http_header_exception`, 400.
    TooLongHttpHeader(String),
    /// The client did not send its request in time: `timeout_exception`, 408.
    RequestTimeout(String),
    /// No route has this path: 400. Elasticsearch's REST layer answers these router-level
    /// failures (this and the next two) with a flat `{"error": "<text>"}` body and no type.
    NoHandler {
        /// The request's path and query, as sent.
        uri: String,
        /// The request method.
        method: String,
    },
    /// The path exists but not for this method: 405 with an `Allow` header.
    MethodNotAllowed {
        /// The request's path and query, as sent.
        uri: String,
        /// The request method.
        method: String,
        /// The methods the path accepts, in Elasticsearch's order.
        allowed: Vec<String>,
    },
    /// A body without a JSON `Content-Type`: 406.
    UnsupportedContentType(String),
    /// `illegal_state_exception`, 500.
    IllegalState(String),
    /// A plain Elasticsearch `exception`, 500.
    Internal(String),
    /// The store could not be reached or failed: `exception`, 503. The text is logged, not sent.
    StoreUnavailable(String),
}

/// The profile store's index name, reported in document-level errors as Elasticsearch does.
pub const PROFILE_INDEX: &str = ".security-profile-8";

impl Error {
    /// `Ok` when no rule failed, otherwise Elasticsearch's accumulated
    /// `action_request_validation_exception` listing every failure in order.
    pub fn check(violations: Vec<Violation>) -> Result<(), Error> {
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Error::ActionValidation(violations))
        }
    }

    /// The 401 for credentials that identify no enabled user; `request` completes Elasticsearch's
    /// sentence, e.g. `action [cluster:admin/xpack/security/token/create]`.
    pub fn unable_to_authenticate(
        username: &str,
        request: &(dyn std::fmt::Display + Sync),
    ) -> Self {
        Error::Unauthenticated {
            reason: format!("unable to authenticate user [{username}] for {request}"),
            challenge: Challenge::Default,
            unsuccessful_credentials: None,
        }
    }

    /// What a request whose handler panicked answers (the panic's own text may quote request
    /// data, so it is never sent).
    pub fn panicked() -> Self {
        Error::Internal("the request failed unexpectedly".into())
    }

    /// A single `action_request_validation_exception`.
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Error::ActionValidation(vec![Violation::new(field, message)])
    }

    /// The Elasticsearch exception type, in snake case.
    pub fn es_type(&self) -> &'static str {
        match self {
            Error::ActionValidation(_) => "action_request_validation_exception",
            Error::Validation(_) => "validation_exception",
            Error::IllegalArgument(_) => "illegal_argument_exception",
            Error::Parse(_) => "parse_exception",
            Error::XContentParse(_) => "x_content_parse_exception",
            Error::BadStatus(_) => "status_exception",
            Error::DocumentParsing(_) => "document_parsing_exception",
            Error::MediaTypeHeader { .. } => "media_type_header_exception",
            Error::OAuth { error, .. } => error,
            Error::ContentTooLong { .. } => "content_too_long_exception",
            Error::Unauthenticated { .. } | Error::Forbidden(_) => "security_exception",
            Error::ResourceNotFound(_) | Error::NoneFound(_) | Error::NothingFound(_) => {
                "resource_not_found_exception"
            }
            Error::DocumentMissing { .. } => "document_missing_exception",
            Error::VersionConflict { .. } => "version_conflict_engine_exception",
            Error::Rejected(_) => "es_rejected_execution_exception",
            Error::CircuitBreaking(_) => "circuit_breaking_exception",
            Error::TooLongHttpLine(_) => "too_long_http_line_exception",
            Error::TooLongHttpHeader(_) => "too_long_http_header_exception",
            Error::RequestTimeout(_) => "timeout_exception",
            // Untyped in Elasticsearch; these names only label them in logs.
            Error::NoHandler { .. } => "no_handler_found",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::UnsupportedContentType(_) => "media_type_not_acceptable",
            Error::IllegalState(_) => "illegal_state_exception",
            Error::Internal(_) | Error::StoreUnavailable(_) => "exception",
        }
    }

    /// The class of failure, which fixes both wire statuses.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::ActionValidation(_)
            | Error::Validation(_)
            | Error::IllegalArgument(_)
            | Error::Parse(_)
            | Error::XContentParse(_)
            | Error::BadStatus(_)
            | Error::DocumentParsing(_)
            | Error::MediaTypeHeader { .. }
            | Error::TooLongHttpLine(_)
            | Error::TooLongHttpHeader(_)
            | Error::OAuth { .. } => ErrorCode::BadRequest,
            Error::NoHandler { .. } => ErrorCode::NoRoute,
            Error::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Error::UnsupportedContentType(_) => ErrorCode::NotAcceptable,
            Error::RequestTimeout(_) => ErrorCode::Timeout,
            Error::ContentTooLong { .. } => ErrorCode::TooLarge,
            Error::Rejected(_) | Error::CircuitBreaking(_) => ErrorCode::TooManyRequests,
            Error::Unauthenticated { .. } => ErrorCode::Unauthenticated,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::ResourceNotFound(_)
            | Error::NoneFound(_)
            | Error::NothingFound(_)
            | Error::DocumentMissing { .. } => ErrorCode::NotFound,
            Error::VersionConflict { .. } => ErrorCode::Conflict,
            Error::IllegalState(_) | Error::Internal(_) => ErrorCode::Internal,
            Error::StoreUnavailable(_) => ErrorCode::Unavailable,
        }
    }

    /// The HTTP status Elasticsearch answers with.
    pub fn http_status(&self) -> u16 {
        self.code().http_status()
    }

    /// The gRPC status code for the same failure.
    pub fn grpc_code(&self) -> tonic::Code {
        self.code().grpc_code()
    }

    /// Logs what the operator must see (the store's own failure, internal errors). Both front
    /// ends call this for every error they render, so it happens in one place whatever the
    /// protocol; clients only ever get [`Error::reason`].
    pub fn log_server_side(&self) {
        match self {
            Error::StoreUnavailable(detail) => tracing::error!(%detail, "store unavailable"),
            // `IllegalState` (an unreadable record) was logged, with its detail, where the
            // store reported it.
            Error::Internal(reason) => tracing::error!(%reason, "request failed"),
            _ => {}
        }
    }

    /// The field violations of a validation failure (empty for other errors).
    pub fn violations(&self) -> &[Violation] {
        match self {
            Error::ActionValidation(v) | Error::Validation(v) => v,
            Error::OAuth { violations, .. } => violations,
            _ => &[],
        }
    }

    /// Elasticsearch's reason text, exactly as it renders it. Never contains secrets.
    pub fn reason(&self) -> String {
        match self {
            Error::ActionValidation(v) | Error::Validation(v) => validation_reason(v),
            Error::IllegalArgument(m)
            | Error::Parse(m)
            | Error::XContentParse(m)
            | Error::BadStatus(m)
            | Error::DocumentParsing(m)
            | Error::Forbidden(m)
            | Error::ResourceNotFound(m)
            | Error::NoneFound(m)
            | Error::IllegalState(m)
            | Error::Rejected(m)
            | Error::CircuitBreaking(m)
            | Error::TooLongHttpLine(m)
            | Error::TooLongHttpHeader(m)
            | Error::RequestTimeout(m)
            | Error::UnsupportedContentType(m)
            | Error::Internal(m) => m.clone(),
            Error::NoHandler { uri, method } => {
                format!("no handler found for uri [{uri}] and method [{method}]")
            }
            Error::MethodNotAllowed {
                uri,
                method,
                allowed,
            } => format!(
                "Incorrect HTTP method for uri [{uri}] and method [{method}], allowed: [{}]",
                allowed.join(", ")
            ),
            Error::ContentTooLong { length, limit } => {
                format!("request body of [{length}] bytes exceeds the limit of [{limit}] bytes")
            }
            Error::Unauthenticated { reason, .. } => reason.clone(),
            Error::MediaTypeHeader { headers, .. } => {
                format!("Invalid media-type value on headers [{headers}]")
            }
            Error::OAuth { description, .. } => description.clone(),
            Error::DocumentMissing { uid } => format!("[profile_{uid}]: document missing"),
            Error::NothingFound(Missing::User(name)) => format!("user [{name}] not found"),
            Error::NothingFound(Missing::Role(name)) => format!("role [{name}] not found"),
            Error::NothingFound(Missing::Token) => "token not found".into(),
            Error::NothingFound(Missing::ApplicationPrivileges { application, names }) => {
                format!(
                    "application privileges [{}] of [{application}] not found",
                    names.join(",")
                )
            }
            Error::VersionConflict {
                uid,
                required_seq_no,
                required_primary_term,
                current_seq_no,
                current_primary_term,
            } => format!(
                "[profile_{uid}]: version conflict, required seqNo [{required_seq_no}], primary term [{required_primary_term}]. current document has seqNo [{current_seq_no}] and primary term [{current_primary_term}]"
            ),
            // The detail stays in the server log; clients learn only that the store is down.
            Error::StoreUnavailable(_) => "the profile store is unavailable".to_string(),
        }
    }
}

/// Renders accumulated messages the way Elasticsearch's `ValidationException` does.
fn validation_reason(violations: &[Violation]) -> String {
    let mut reason = String::from("Validation Failed: ");
    for (index, violation) in violations.iter().enumerate() {
        reason.push_str(&format!("{}: {};", index + 1, violation.message));
    }
    reason
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.es_type(), self.reason())
    }
}

impl std::error::Error for Error {}

/// Results across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages_are_numbered_and_semicolon_terminated() {
        let error = Error::ActionValidation(vec![
            Violation::new(
                "username",
                "[username] is required for grant_type [password]",
            ),
            Violation::new(
                "password",
                "[password] is required for grant_type [password]",
            ),
        ]);
        assert_eq!(
            error.reason(),
            "Validation Failed: 1: [username] is required for grant_type [password];2: [password] is required for grant_type [password];"
        );
        assert_eq!(error.http_status(), 400);
    }

    #[test]
    fn store_failures_hide_their_detail_from_clients() {
        let error = Error::StoreUnavailable("disk /secret/path failed".into());
        assert!(!error.reason().contains("secret"));
        assert_eq!(error.grpc_code(), tonic::Code::Unavailable);
    }
}
