//! `userprofiles.v1.UserProfiles`: message → engine request → engine → message.

use super::convert;
use super::{acknowledged, reply, GrpcApi};
use crate::auth::password::Secret;
use crate::engine::data_filter::DataFilter;
use crate::engine::profile_data::UpdateDataRequest;
use crate::engine::profiles::ActivateRequest;
use crate::engine::suggest::{SuggestHint, SuggestRequest};
use crate::pb;
use tonic::{Request, Response, Status};

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
                let errors = convert::profile_errors(result.errors);
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
        let object = |value: Option<&prost_types::Struct>, field| {
            convert::optional_object(value, field).map_err(|e| convert::status(&e))
        };
        let labels = object(m.labels.as_ref(), "labels")?;
        let data = object(m.data.as_ref(), "data")?;
        let engine_request = UpdateDataRequest {
            uid: m.uid,
            labels,
            data,
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

    async fn has_privileges(
        &self,
        request: Request<pb::ProfileHasPrivilegesRequest>,
    ) -> Result<Response<pb::ProfileHasPrivilegesResponse>, Status> {
        let caller = Self::caller(&request)?;
        let message = request.into_inner();
        let check = super::privileges::privileges_to_check(message.privileges);
        reply(
            self.engine
                .profile_has_privileges(&caller, &message.uids, &check)
                .await,
            |answer| pb::ProfileHasPrivilegesResponse {
                has_privilege_uids: answer.has_privilege_uids,
                errors: convert::profile_errors(answer.errors),
            },
        )
    }
}
