//! `userprofiles.v1.Privileges` and `UserProfiles/HasPrivileges`: message → engine → message.

use super::convert;
use super::{reply, GrpcApi};
use crate::auth::has_privileges::{ApplicationCheck, IndexCheck, PrivilegesToCheck};
use crate::error::Error;
use crate::model::ApplicationPrivilegeRecord;
use crate::pb;
use tonic::{Request, Response, Status};

/// The protobuf check to the engine's.
pub(super) fn privileges_to_check(message: Option<pb::PrivilegesToCheck>) -> PrivilegesToCheck {
    let message = message.unwrap_or_default();
    PrivilegesToCheck {
        cluster: message.cluster,
        index: message
            .index
            .into_iter()
            .map(|entry| IndexCheck {
                names: entry.names,
                privileges: entry.privileges,
                allow_restricted_indices: entry.allow_restricted_indices,
            })
            .collect(),
        application: message
            .application
            .into_iter()
            .map(|entry| ApplicationCheck {
                application: entry.application,
                privileges: entry.privileges,
                resources: entry.resources,
            })
            .collect(),
    }
}

fn privilege(record: ApplicationPrivilegeRecord) -> pb::ApplicationPrivilege {
    pb::ApplicationPrivilege {
        metadata: Some(convert::to_struct(&record.metadata)),
        application: record.application,
        name: record.name,
        actions: record.actions,
    }
}

fn privilege_record(
    message: pb::ApplicationPrivilege,
) -> Result<ApplicationPrivilegeRecord, Error> {
    Ok(ApplicationPrivilegeRecord {
        application: message.application,
        name: message.name,
        actions: message.actions,
        metadata: convert::optional_object(message.metadata.as_ref(), "metadata")?
            .unwrap_or_default(),
    })
}

#[tonic::async_trait]
impl pb::privileges_server::Privileges for GrpcApi {
    async fn put_privileges(
        &self,
        request: Request<pb::PutPrivilegesRequest>,
    ) -> Result<Response<pb::PutPrivilegesResponse>, Status> {
        let caller = Self::caller(&request)?;
        let privileges = request
            .into_inner()
            .privileges
            .into_iter()
            .map(privilege_record)
            .collect::<Result<Vec<_>, Error>>()
            .map_err(|e| convert::status(&e))?;
        reply(
            self.engine
                .put_application_privileges(&caller, privileges)
                .await,
            |written| pb::PutPrivilegesResponse {
                privileges: written
                    .into_iter()
                    .map(|(application, name, created)| pb::PrivilegeWritten {
                        application,
                        name,
                        created,
                    })
                    .collect(),
            },
        )
    }

    async fn get_privileges(
        &self,
        request: Request<pb::GetPrivilegesRequest>,
    ) -> Result<Response<pb::GetPrivilegesResponse>, Status> {
        let caller = Self::caller(&request)?;
        let message = request.into_inner();
        reply(
            self.engine
                .get_application_privileges(
                    &caller,
                    &message.application.into_iter().collect::<Vec<_>>(),
                    &message.names,
                )
                .await,
            |found| pb::GetPrivilegesResponse {
                privileges: found.into_iter().map(privilege).collect(),
            },
        )
    }

    async fn delete_privileges(
        &self,
        request: Request<pb::DeletePrivilegesRequest>,
    ) -> Result<Response<pb::DeletePrivilegesResponse>, Status> {
        let caller = Self::caller(&request)?;
        let message = request.into_inner();
        let deleted = self
            .engine
            .delete_application_privileges(&caller, &message.application, &message.names)
            .await;
        reply(deleted, |found| pb::DeletePrivilegesResponse {
            privileges: found
                .into_iter()
                .map(|(name, found)| pb::PrivilegeDeleted { name, found })
                .collect(),
        })
    }
}
