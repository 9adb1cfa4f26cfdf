//! `userprofiles.v1.Users`, `Roles`, `Security` and `Tokens`: message → engine request →
//! engine → message.

use super::convert;
use super::{reply, GrpcApi};
use crate::auth::password::Secret;
use crate::engine::tokens::{CreateTokenRequest, InvalidateTokenRequest};
use crate::engine::users::PutUserRequest;
use crate::pb;
use tonic::{Request, Response, Status};

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
            metadata: convert::optional_object(m.metadata.as_ref(), "metadata")
                .map_err(|e| convert::status(&e))?
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
        let result = self
            .engine
            .get_users(&caller, &m.usernames, m.with_profile_uid)
            .await;
        reply(result, |users| pb::GetUsersResponse {
            users: users.into_iter().map(convert::user).collect(),
        })
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
        let role = convert::role_record(role).map_err(|e| convert::status(&e))?;
        reply(self.engine.put_role(&caller, role).await, |created| {
            pb::PutRoleResponse { created }
        })
    }

    async fn get_roles(
        &self,
        request: Request<pb::GetRolesRequest>,
    ) -> Result<Response<pb::GetRolesResponse>, Status> {
        let caller = Self::caller(&request)?;
        let names = request.into_inner().names;
        reply(self.engine.get_roles(&caller, &names).await, |roles| {
            pb::GetRolesResponse {
                roles: roles.into_iter().map(convert::role).collect(),
            }
        })
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
        Ok(Response::new(convert::authentication(caller.user.clone())))
    }

    async fn has_privileges(
        &self,
        request: Request<pb::HasPrivilegesRequest>,
    ) -> Result<Response<pb::HasPrivilegesResponse>, Status> {
        let caller = Self::caller(&request)?;
        let message = request.into_inner();
        let check = super::privileges::privileges_to_check(message.privileges);
        let flags = |granted: Vec<(String, bool)>| pb::PrivilegeFlags {
            privileges: granted.into_iter().collect(),
        };
        reply(
            self.engine
                .user_has_privileges(&caller, message.username.as_deref(), &check)
                .await,
            |answer| pb::HasPrivilegesResponse {
                username: answer.username,
                has_all_requested: answer.result.has_all_requested,
                cluster: answer.result.cluster.into_iter().collect(),
                index: answer
                    .result
                    .index
                    .into_iter()
                    .map(|(index, granted)| (index, flags(granted)))
                    .collect(),
                application: answer
                    .result
                    .application
                    .into_iter()
                    .map(|(application, resources)| {
                        (
                            application,
                            pb::ResourcePrivilegeFlags {
                                resources: resources
                                    .into_iter()
                                    .map(|(resource, granted)| (resource, flags(granted)))
                                    .collect(),
                            },
                        )
                    })
                    .collect(),
            },
        )
    }

    async fn get_user_privileges(
        &self,
        request: Request<pb::GetUserPrivilegesRequest>,
    ) -> Result<Response<pb::GetUserPrivilegesResponse>, Status> {
        let caller = Self::caller(&request)?;
        let structs = |values: &[serde_json::Value]| -> Vec<prost_types::Struct> {
            values
                .iter()
                .filter_map(|v| v.as_object().map(convert::to_struct))
                .collect()
        };
        reply(self.engine.user_privileges(&caller).await, |privileges| {
            pb::GetUserPrivilegesResponse {
                indices: structs(&privileges.indices),
                applications: structs(&privileges.applications),
                cluster: privileges.cluster,
                global: Some(pb::GlobalPrivileges {
                    profile_write_applications: privileges.profile_write,
                    application_manage_applications: privileges.application_manage,
                }),
                run_as: privileges.run_as,
            }
        })
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
        let result = self.engine.invalidate_tokens(&caller, engine_request).await;
        reply(result, |counts| pb::InvalidateTokenResponse {
            invalidated_tokens: counts.invalidated as i64,
            previously_invalidated_tokens: counts.previously_invalidated as i64,
            error_count: counts.error_count() as i64,
        })
    }
}
