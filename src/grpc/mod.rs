//! The gRPC front end: thin tonic adapters over the engine. [`AuthenticateLayer`] authenticates
//! each call from its `authorization` metadata before the message is decoded; each RPC then
//! takes that caller, converts the message, calls the engine once and converts the answer back.
//! No rule lives here.

pub mod convert;

use crate::auth::parse_authorization;
use crate::auth::password::Secret;
use crate::engine::data_filter::DataFilter;
use crate::engine::profile_data::UpdateDataRequest;
use crate::engine::profiles::ActivateRequest;
use crate::engine::suggest::{SuggestHint, SuggestRequest};
use crate::engine::tokens::{CreateTokenRequest, InvalidateTokenRequest};
use crate::engine::users::PutUserRequest;
use crate::engine::{Caller, Engine};
use crate::error::Error;
use crate::pb;
use convert::status;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use tonic::{Request, Response, Status};

/// Implements every `userprofiles.v1` service over one engine.
#[derive(Clone)]
pub struct GrpcApi {
    engine: Engine,
}

impl GrpcApi {
    /// Adapters over `engine`.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// The caller [`AuthenticateLayer`] authenticated before the message was decoded.
    fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| {
                status(&Error::Internal(
                    "a call reached its handler without being authenticated".into(),
                ))
            })
    }
}

async fn authenticate(
    engine: &Engine,
    authorization: Option<&[u8]>,
    method: &str,
) -> Result<Caller, Error> {
    let credentials = match authorization {
        Some(value) => parse_authorization(value)?,
        None => None,
    };
    engine
        .authenticate(credentials, &format!("gRPC request [{method}]"))
        .await
}

/// Authenticates every `userprofiles.v1` call from its headers before tonic reads and decodes
/// the message, so an unauthenticated caller is refused without the server buffering its
/// body. The caller travels to the handler in the request's extensions. Health and
/// reflection stay open, as probes and grpcurl expect.
/// It also bounds each call's time, message upload included: past `call_timeout` the caller
/// gets DEADLINE_EXCEEDED.
#[derive(Clone)]
pub struct AuthenticateLayer {
    engine: Engine,
    call_timeout: std::time::Duration,
}

impl AuthenticateLayer {
    /// A layer authenticating against `engine`, each call bounded by `call_timeout`.
    pub fn new(engine: Engine, call_timeout: std::time::Duration) -> Self {
        Self {
            engine,
            call_timeout,
        }
    }
}

impl<S> tower::Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            engine: self.engine.clone(),
            call_timeout: self.call_timeout,
        }
    }
}

/// The service [`AuthenticateLayer`] wraps around the gRPC router.
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    engine: Engine,
    call_timeout: std::time::Duration,
}

/// The package whose services need an authenticated caller.
const AUTHENTICATED_PREFIX: &str = "/userprofiles.v1.";

impl<S, B, R> tower::Service<axum::http::Request<B>> for Authenticate<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        // The clone that was made ready is the one to call; keep a fresh clone in its place.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        if !request.uri().path().starts_with(AUTHENTICATED_PREFIX) {
            return Box::pin(inner.call(request));
        }
        let engine = self.engine.clone();
        let call_timeout = self.call_timeout;
        Box::pin(async move {
            let method = request.uri().path().to_owned();
            let authorization = request
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .cloned();
            let authorization = authorization.as_ref().map(|value| value.as_bytes());
            match authenticate(&engine, authorization, &method).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    // A panic in a handler answers INTERNAL instead of dropping the connection.
                    let handled = AssertUnwindSafe(inner.call(request)).catch_unwind();
                    match tokio::time::timeout(call_timeout, handled).await {
                        Ok(Ok(response)) => response,
                        Ok(Err(_)) => Ok(status(&Error::panicked()).into_http()),
                        Err(_) => Ok(status(&Error::RequestTimeout(format!(
                            "the call did not complete within [{}ms]",
                            call_timeout.as_millis()
                        )))
                        .into_http()),
                    }
                }
                Err(error) => Ok(status(&error).into_http()),
            }
        })
    }
}

fn acknowledged(_: ()) -> pb::AcknowledgedResponse {
    pb::AcknowledgedResponse { acknowledged: true }
}

fn reply<T, U>(
    result: Result<T, Error>,
    convert: impl FnOnce(T) -> U,
) -> Result<Response<U>, Status> {
    result
        .map(|v| Response::new(convert(v)))
        .map_err(|e| status(&e))
}

#[tonic::async_trait]
impl pb::user_profiles_server::UserProfiles for GrpcApi {
    async fn activate(
        &self,
        request: Request<pb::ActivateRequest>,
    ) -> Result<Response<pb::Profile>, Status> {
        let caller = Self::caller(&request)?;
        let message = request.into_inner();
        let engine_request = ActivateRequest {
            grant_type: Some(message.grant_type),
            username: Some(message.username),
            password: Some(Secret::new(message.password)),
            access_token: Some(Secret::new(message.access_token)),
        };
        reply(
            self.engine.activate(&caller, engine_request).await,
            convert::profile,
        )
    }

    async fn get_profiles(
        &self,
        request: Request<pb::GetProfilesRequest>,
    ) -> Result<Response<pb::GetProfilesResponse>, Status> {
        let caller = Self::caller(&request)?;
        let message = request.into_inner();
        let filter = DataFilter::new(&message.data);
        reply(
            self.engine
                .get_profiles(&caller, &message.uids, &filter)
                .await,
            |result| {
                let errors = (!result.errors.is_empty()).then(|| pb::ProfileErrors {
                    count: result.errors.len() as i32,
                    details: result
                        .errors
                        .into_iter()
                        .map(|(uid, e)| {
                            (
                                uid,
                                pb::ErrorCause {
                                    r#type: e.error_type.to_owned(),
                                    reason: e.reason,
                                },
                            )
                        })
                        .collect(),
                });
                pb::GetProfilesResponse {
                    profiles: result.profiles.into_iter().map(convert::profile).collect(),
                    errors,
                }
            },
        )
    }

    async fn update_profile_data(
        &self,
        request: Request<pb::UpdateProfileDataRequest>,
    ) -> Result<Response<pb::AcknowledgedResponse>, Status> {
        let caller = Self::caller(&request)?;
        let m = request.into_inner();
        let engine_request = UpdateDataRequest {
            uid: m.uid,
            labels: m.labels.as_ref().map(convert::from_struct),
            data: m.data.as_ref().map(convert::from_struct),
            if_seq_no: m.if_seq_no,
            if_primary_term: m.if_primary_term,
        };
        reply(
            self.engine
                .update_profile_data(&caller, engine_request)
                .await,
            acknowledged,
        )
    }

    async fn enable_profile(
        &self,
        request: Request<pb::SetProfileEnabledRequest>,
    ) -> Result<Response<pb::AcknowledgedResponse>, Status> {
        let caller = Self::caller(&request)?;
        let uid = request.into_inner().uid;
        reply(
            self.engine.set_profile_enabled(&caller, &uid, true).await,
            acknowledged,
        )
    }

    async fn disable_profile(
        &self,
        request: Request<pb::SetProfileEnabledRequest>,
    ) -> Result<Response<pb::AcknowledgedResponse>, Status> {
        let caller = Self::caller(&request)?;
        let uid = request.into_inner().uid;
        reply(
            self.engine.set_profile_enabled(&caller, &uid, false).await,
            acknowledged,
        )
    }

    async fn suggest_profiles(
        &self,
        request: Request<pb::SuggestProfilesRequest>,
    ) -> Result<Response<pb::SuggestProfilesResponse>, Status> {
        let caller = Self::caller(&request)?;
        let m = request.into_inner();
        let hint = m.hint.map(|hint| SuggestHint {
            uids: (!hint.uids.is_empty()).then_some(hint.uids),
            labels: (!hint.labels.is_empty()).then(|| {
                let mut labels: Vec<(String, Vec<String>)> = hint
                    .labels
                    .into_iter()
                    .map(|(k, v)| (k, v.values))
                    .collect();
                labels.sort();
                labels
            }),
        });
        let engine_request = SuggestRequest {
            name: m.name,
            size: m.size.map(i64::from),
            data: DataFilter::new(&m.data),
            hint,
        };
        reply(
            self.engine.suggest_profiles(&caller, engine_request).await,
            |result| pb::SuggestProfilesResponse {
                took: result.took as i64,
                total: Some(pb::SuggestTotal {
                    value: result.total as i64,
                    relation: result.total_relation().into(),
                }),
                profiles: result
                    .profiles
                    .into_iter()
                    .map(convert::suggested_profile)
                    .collect(),
            },
        )
    }
}

#[tonic::async_trait]
impl pb::users_server::Users for GrpcApi {
    async fn put_user(
        &self,
        request: Request<pb::PutUserRequest>,
    ) -> Result<Response<pb::PutUserResponse>, Status> {
        let caller = Self::caller(&request)?;
        let m = request.into_inner();
        let engine_request = PutUserRequest {
            username: m.username,
            password: m.password.map(Secret::new),
            password_hash: m.password_hash,
            roles: Some(m.roles),
            full_name: m.full_name,
            email: m.email,
            metadata: m
                .metadata
                .as_ref()
                .map(convert::from_struct)
                .unwrap_or_default(),
            enabled: m.enabled,
        };
        reply(
            self.engine.put_user(&caller, engine_request).await,
            |created| pb::PutUserResponse { created },
        )
    }

    async fn get_users(
        &self,
        request: Request<pb::GetUsersRequest>,
    ) -> Result<Response<pb::GetUsersResponse>, Status> {
        let caller = Self::caller(&request)?;
        let m = request.into_inner();
        let users = self
            .engine
            .get_users(&caller, &m.usernames, m.with_profile_uid)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::GetUsersResponse {
            users: users.into_iter().map(convert::user).collect(),
        }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let caller = Self::caller(&request)?;
        let username = request.into_inner().username;
        reply(self.engine.delete_user(&caller, &username).await, |()| {
            pb::DeleteUserResponse { found: true }
        })
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let caller = Self::caller(&request)?;
        let m = request.into_inner();
        let result = self
            .engine
            .change_password(
                &caller,
                Some(&m.username),
                m.password.map(Secret::new),
                m.password_hash,
            )
            .await;
        reply(result, |()| pb::ChangePasswordResponse {})
    }

    async fn enable_user(
        &self,
        request: Request<pb::SetUserEnabledRequest>,
    ) -> Result<Response<pb::SetUserEnabledResponse>, Status> {
        let caller = Self::caller(&request)?;
        let username = request.into_inner().username;
        reply(
            self.engine.set_user_enabled(&caller, &username, true).await,
            |()| pb::SetUserEnabledResponse {},
        )
    }

    async fn disable_user(
        &self,
        request: Request<pb::SetUserEnabledRequest>,
    ) -> Result<Response<pb::SetUserEnabledResponse>, Status> {
        let caller = Self::caller(&request)?;
        let username = request.into_inner().username;
        reply(
            self.engine
                .set_user_enabled(&caller, &username, false)
                .await,
            |()| pb::SetUserEnabledResponse {},
        )
    }
}

#[tonic::async_trait]
impl pb::roles_server::Roles for GrpcApi {
    async fn put_role(
        &self,
        request: Request<pb::PutRoleRequest>,
    ) -> Result<Response<pb::PutRoleResponse>, Status> {
        let caller = Self::caller(&request)?;
        let role = request.into_inner().role.unwrap_or_default();
        reply(
            self.engine
                .put_role(&caller, convert::role_record(role))
                .await,
            |created| pb::PutRoleResponse { created },
        )
    }

    async fn get_roles(
        &self,
        request: Request<pb::GetRolesRequest>,
    ) -> Result<Response<pb::GetRolesResponse>, Status> {
        let caller = Self::caller(&request)?;
        let names = request.into_inner().names;
        let roles = self
            .engine
            .get_roles(&caller, &names)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::GetRolesResponse {
            roles: roles.into_iter().map(convert::role).collect(),
        }))
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::DeleteRoleResponse>, Status> {
        let caller = Self::caller(&request)?;
        let name = request.into_inner().name;
        reply(self.engine.delete_role(&caller, &name).await, |()| {
            pb::DeleteRoleResponse { found: true }
        })
    }
}

#[tonic::async_trait]
impl pb::security_server::Security for GrpcApi {
    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        let caller = Self::caller(&request)?;
        Ok(Response::new(convert::authentication(caller.user)))
    }
}

#[tonic::async_trait]
impl pb::tokens_server::Tokens for GrpcApi {
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let caller = Self::caller(&request)?;
        let m = request.into_inner();
        let engine_request = CreateTokenRequest {
            grant_type: Some(m.grant_type),
            username: Some(m.username),
            password: Some(Secret::new(m.password)),
            refresh_token: Some(Secret::new(m.refresh_token)),
            kerberos_ticket: None,
            scope: Some(m.scope),
        };
        reply(
            self.engine.create_token(&caller, engine_request).await,
            |issued| pb::CreateTokenResponse {
                access_token: issued.access_token.expose().to_owned(),
                r#type: issued.token_type().into(),
                expires_in: issued.expires_in,
                refresh_token: issued.refresh_token.map(|r| r.expose().to_owned()),
                scope: issued.scope.map(str::to_owned),
                authentication: Some(convert::authentication(issued.authentication)),
            },
        )
    }

    async fn invalidate_token(
        &self,
        request: Request<pb::InvalidateTokenRequest>,
    ) -> Result<Response<pb::InvalidateTokenResponse>, Status> {
        let caller = Self::caller(&request)?;
        let m = request.into_inner();
        let engine_request = InvalidateTokenRequest {
            token: Some(Secret::new(m.token)),
            refresh_token: Some(Secret::new(m.refresh_token)),
            realm_name: Some(m.realm_name),
            username: Some(m.username),
        };
        let result = self
            .engine
            .invalidate_tokens(&caller, engine_request)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::InvalidateTokenResponse {
            invalidated_tokens: result.invalidated as i64,
            previously_invalidated_tokens: result.previously_invalidated as i64,
            error_count: result.error_count() as i64,
        }))
    }
}
