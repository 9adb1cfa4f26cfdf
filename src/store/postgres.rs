//! The PostgreSQL store, for several stateless replicas on one database.
//!
//! Every profile write first locks the single `profile_meta` row that holds the `_seq_no`
//! counter, so profile writes from all replicas are serialised and commit in `_seq_no` order:
//! one global sequence, no duplicate profiles under concurrent first activations, and a change
//! feed (`seq_no > n`) that never skips a write. Tokens, users and roles are plain rows with
//! compare-and-set where the engine needs it. Migrations are embedded and run at start.
//!
//! Longer than the ~400-line guide on purpose: one `Store` implementation whose methods share
//! the sequence lock and row shapes; splitting it would spread one locking protocol over files.

use super::{
    CreateProfile, ProfileChange, ProfileSlot, Store, StoreError, TokenPredicate, UpdateProfile,
};
use crate::model::{
    ApplicationPrivilegeRecord, ProfileDoc, RoleRecord, TokenRecord, UserRecord, Versioned,
};
use async_trait::async_trait;
use serde::{de::DeserializeOwned, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Profiles are written with primary term 1, as in the embedded store.
const PRIMARY_TERM: i64 = 1;

/// The PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Set while the health check finds the database unreachable: requests then fail at once
    /// with 503 / UNAVAILABLE (clients and mesh retries key on it) instead of each waiting
    /// for the pool's acquire timeout; cleared by the first health check that gets through.
    unreachable: Arc<AtomicBool>,
}

/// How long a health check waits for the database before calling it unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

impl PostgresStore {
    /// The pool, unless the health check last found the database unreachable.
    fn pool(&self) -> Result<&PgPool, StoreError> {
        if self.unreachable.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(
                "PostgreSQL is unreachable (the health check is failing)".into(),
            ));
        }
        Ok(&self.pool)
    }
}

fn fail(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(fail)
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    crate::limits::decode_stored(text.as_bytes()).map_err(StoreError::Unreadable)
}

fn profile_from_row(row: &sqlx::postgres::PgRow) -> Result<Versioned<ProfileDoc>, StoreError> {
    Ok(Versioned {
        doc: decode(row.try_get::<&str, _>("doc").map_err(fail)?)?,
        seq_no: row.try_get("seq_no").map_err(fail)?,
        primary_term: row.try_get("primary_term").map_err(fail)?,
    })
}

impl PostgresStore {
    /// Connects a pool to `url` and applies the embedded migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot migrate the PostgreSQL schema: {e}"))
            })?;
        Ok(Self {
            pool,
            unreachable: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Starts a profile write: takes the `_seq_no` lock (creating the counter if needed) and
    /// returns the next sequence number.
    async fn lock_sequence(tx: &mut Transaction<'_, Postgres>) -> Result<i64, StoreError> {
        sqlx::query(
            "INSERT INTO profile_meta (id, next_seq_no) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
        )
        .execute(&mut **tx)
        .await
        .map_err(fail)?;
        sqlx::query_scalar("SELECT next_seq_no FROM profile_meta WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut **tx)
            .await
            .map_err(fail)
    }

    async fn advance_sequence(tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
        sqlx::query("UPDATE profile_meta SET next_seq_no = next_seq_no + 1 WHERE id = 1")
            .execute(&mut **tx)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn get_doc<T: DeserializeOwned>(
        &self,
        sql: &str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let text: Option<String> = sqlx::query_scalar(sql)
            .bind(key)
            .fetch_optional(self.pool()?)
            .await
            .map_err(fail)?;
        text.map(|t| decode(&t)).transpose()
    }

    async fn list_docs<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, StoreError> {
        let texts: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(self.pool()?)
            .await
            .map_err(fail)?;
        texts.iter().map(|t| decode(t)).collect()
    }

    async fn execute(&self, sql: &str, key: &str, doc: Option<String>) -> Result<u64, StoreError> {
        let query = sqlx::query(sql).bind(key);
        let query = match doc {
            Some(doc) => query.bind(doc),
            None => query,
        };
        Ok(query
            .execute(self.pool()?)
            .await
            .map_err(fail)?
            .rows_affected())
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn get_profile(&self, uid: &str) -> Result<Option<Versioned<ProfileDoc>>, StoreError> {
        let row = sqlx::query("SELECT doc, seq_no, primary_term FROM profiles WHERE uid = $1")
            .bind(uid)
            .fetch_optional(self.pool()?)
            .await
            .map_err(fail)?;
        row.as_ref().map(profile_from_row).transpose()
    }

    async fn get_profiles(&self, uids: &[String]) -> Result<Vec<ProfileSlot>, StoreError> {
        let rows =
            sqlx::query("SELECT uid, doc, seq_no, primary_term FROM profiles WHERE uid = ANY($1)")
                .bind(uids)
                .fetch_all(self.pool()?)
                .await
                .map_err(fail)?;
        let mut found = std::collections::HashMap::new();
        for row in &rows {
            let uid: String = row.try_get("uid").map_err(fail)?;
            found.insert(uid, profile_from_row(row));
        }
        Ok(uids
            .iter()
            .map(|uid| found.get(uid).cloned().transpose())
            .collect())
    }

    async fn find_profile_by_user(
        &self,
        username: &str,
        realm_type: &str,
    ) -> Result<Option<Versioned<ProfileDoc>>, StoreError> {
        let row = sqlx::query("SELECT doc, seq_no, primary_term FROM profiles WHERE realm_type = $1 AND username = $2")
            .bind(realm_type)
            .bind(username)
            .fetch_optional(self.pool()?)
            .await
            .map_err(fail)?;
        row.as_ref().map(profile_from_row).transpose()
    }

    async fn create_profile(&self, doc: ProfileDoc) -> Result<CreateProfile, StoreError> {
        let mut tx = self.pool()?.begin().await.map_err(fail)?;
        let seq_no = Self::lock_sequence(&mut tx).await?;
        let owned = sqlx::query("SELECT doc, seq_no, primary_term FROM profiles WHERE realm_type = $1 AND username = $2")
            .bind(&doc.user.realm.realm_type)
            .bind(&doc.user.username)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?;
        if let Some(row) = owned {
            return Ok(CreateProfile::UserHasProfile(profile_from_row(&row)?));
        }
        let taken = sqlx::query("SELECT doc, seq_no, primary_term FROM profiles WHERE uid = $1")
            .bind(&doc.uid)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?;
        if let Some(row) = taken {
            return Ok(CreateProfile::UidTaken(profile_from_row(&row)?));
        }
        sqlx::query("INSERT INTO profiles (uid, realm_type, username, seq_no, primary_term, doc) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&doc.uid)
            .bind(&doc.user.realm.realm_type)
            .bind(&doc.user.username)
            .bind(seq_no)
            .bind(PRIMARY_TERM)
            .bind(encode(&doc)?)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        Self::advance_sequence(&mut tx).await?;
        tx.commit().await.map_err(fail)?;
        Ok(CreateProfile::Created(Versioned {
            doc,
            seq_no,
            primary_term: PRIMARY_TERM,
        }))
    }

    async fn update_profile(
        &self,
        doc: ProfileDoc,
        expected_seq_no: i64,
    ) -> Result<UpdateProfile, StoreError> {
        let mut tx = self.pool()?.begin().await.map_err(fail)?;
        let seq_no = Self::lock_sequence(&mut tx).await?;
        // The compare is the UPDATE's own condition: no document is read or decoded.
        let updated = sqlx::query(
            "UPDATE profiles SET seq_no = $2, doc = $3 WHERE uid = $1 AND seq_no = $4 RETURNING primary_term",
        )
        .bind(&doc.uid)
        .bind(seq_no)
        .bind(encode(&doc)?)
        .bind(expected_seq_no)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
        let Some(updated) = updated else {
            let current = sqlx::query("SELECT seq_no, primary_term FROM profiles WHERE uid = $1")
                .bind(&doc.uid)
                .fetch_optional(&mut *tx)
                .await
                .map_err(fail)?;
            return Ok(match current {
                None => UpdateProfile::Missing,
                Some(row) => UpdateProfile::Conflict {
                    seq_no: row.try_get("seq_no").map_err(fail)?,
                    primary_term: row.try_get("primary_term").map_err(fail)?,
                },
            });
        };
        let primary_term: i64 = updated.try_get("primary_term").map_err(fail)?;
        Self::advance_sequence(&mut tx).await?;
        tx.commit().await.map_err(fail)?;
        Ok(UpdateProfile::Updated(Versioned {
            doc,
            seq_no,
            primary_term,
        }))
    }

    async fn profiles_changed_since(
        &self,
        after_seq_no: i64,
        limit: usize,
    ) -> Result<Vec<ProfileChange>, StoreError> {
        let rows = sqlx::query("SELECT uid, doc, seq_no, primary_term FROM profiles WHERE seq_no > $1 ORDER BY seq_no LIMIT $2")
            .bind(after_seq_no)
            .bind(limit as i64)
            .fetch_all(self.pool()?)
            .await
            .map_err(fail)?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in &rows {
            let uid: String = row.try_get("uid").map_err(fail)?;
            let seq_no: i64 = row.try_get("seq_no").map_err(fail)?;
            changes.push(ProfileChange::from_decoded(
                uid,
                seq_no,
                profile_from_row(row),
            )?);
        }
        Ok(changes)
    }

    async fn create_profile_index(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO profile_meta (id, next_seq_no) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
        )
        .execute(self.pool()?)
        .await
        .map_err(fail)?;
        Ok(())
    }

    async fn profile_index_exists(&self) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM profile_meta WHERE id = 1)")
            .fetch_one(self.pool()?)
            .await
            .map_err(fail)
    }

    async fn count_profiles(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM profiles")
            .fetch_one(self.pool()?)
            .await
            .map_err(fail)?;
        Ok(count.max(0) as u64)
    }

    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.get_doc("SELECT doc FROM users WHERE username = $1", username)
            .await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.list_docs("SELECT doc FROM users ORDER BY username")
            .await
    }

    async fn put_user(&self, user: UserRecord) -> Result<bool, StoreError> {
        // xmax is 0 only for a freshly inserted row: tells created from updated in one trip.
        sqlx::query_scalar(
            "INSERT INTO users (username, doc) VALUES ($1, $2) ON CONFLICT (username) DO UPDATE SET doc = EXCLUDED.doc RETURNING (xmax = 0)",
        )
        .bind(&user.username)
        .bind(encode(&user)?)
        .fetch_one(self.pool()?)
        .await
        .map_err(fail)
    }

    async fn create_user_if_absent(&self, user: UserRecord) -> Result<bool, StoreError> {
        let sql =
            "INSERT INTO users (username, doc) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING";
        Ok(self
            .execute(sql, &user.username, Some(encode(&user)?))
            .await?
            == 1)
    }

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        Ok(self
            .execute("DELETE FROM users WHERE username = $1", username, None)
            .await?
            == 1)
    }

    async fn get_role(&self, name: &str) -> Result<Option<RoleRecord>, StoreError> {
        self.get_doc("SELECT doc FROM roles WHERE name = $1", name)
            .await
    }

    async fn list_roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.list_docs("SELECT doc FROM roles ORDER BY name").await
    }

    async fn put_role(&self, role: RoleRecord) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO roles (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc RETURNING (xmax = 0)",
        )
        .bind(&role.name)
        .bind(encode(&role)?)
        .fetch_one(self.pool()?)
        .await
        .map_err(fail)
    }

    async fn delete_role(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .execute("DELETE FROM roles WHERE name = $1", name, None)
            .await?
            == 1)
    }

    async fn put_application_privileges(
        &self,
        privileges: Vec<ApplicationPrivilegeRecord>,
    ) -> Result<Vec<bool>, StoreError> {
        let mut tx = self.pool()?.begin().await.map_err(fail)?;
        let mut created = Vec::with_capacity(privileges.len());
        for privilege in &privileges {
            let inserted: bool = sqlx::query_scalar(
                "INSERT INTO application_privileges (application, name, doc) VALUES ($1, $2, $3) \
                 ON CONFLICT (application, name) DO UPDATE SET doc = EXCLUDED.doc RETURNING (xmax = 0)",
            )
            .bind(&privilege.application)
            .bind(&privilege.name)
            .bind(encode(privilege)?)
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
            created.push(inserted);
        }
        tx.commit().await.map_err(fail)?;
        Ok(created)
    }

    async fn list_application_privileges(
        &self,
    ) -> Result<Vec<ApplicationPrivilegeRecord>, StoreError> {
        self.list_docs("SELECT doc FROM application_privileges ORDER BY application COLLATE \"C\", name COLLATE \"C\"")
            .await
    }

    async fn delete_application_privileges(
        &self,
        application: &str,
        names: &[String],
    ) -> Result<Vec<bool>, StoreError> {
        let deleted: Vec<String> = sqlx::query_scalar(
            "DELETE FROM application_privileges WHERE application = $1 AND name = ANY($2) RETURNING name",
        )
        .bind(application)
        .bind(names)
        .fetch_all(self.pool()?)
        .await
        .map_err(fail)?;
        Ok(names.iter().map(|name| deleted.contains(name)).collect())
    }

    async fn put_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (id, refresh_digest, version, doc) VALUES ($1, $2, $3, $4)",
        )
        .bind(&token.id)
        .bind(&token.refresh_digest)
        .bind(token.version as i64)
        .bind(encode(&token)?)
        .execute(self.pool()?)
        .await
        .map_err(fail)?;
        Ok(())
    }

    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.get_doc("SELECT doc FROM tokens WHERE id = $1", id)
            .await
    }

    async fn get_token_by_refresh(
        &self,
        refresh_digest: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.get_doc(
            "SELECT doc FROM tokens WHERE refresh_digest = $1",
            refresh_digest,
        )
        .await
    }

    async fn update_token(
        &self,
        token: TokenRecord,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        let next = TokenRecord {
            version: expected_version + 1,
            ..token
        };
        let updated =
            sqlx::query("UPDATE tokens SET doc = $2, version = $3 WHERE id = $1 AND version = $4")
                .bind(&next.id)
                .bind(encode(&next)?)
                .bind(next.version as i64)
                .bind(expected_version as i64)
                .execute(self.pool()?)
                .await
                .map_err(fail)?;
        Ok(updated.rows_affected() == 1)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.list_docs("SELECT doc FROM tokens ORDER BY id").await
    }

    async fn delete_tokens_where(&self, expired: TokenPredicate) -> Result<u64, StoreError> {
        let doomed: Vec<String> = self
            .list_tokens()
            .await?
            .into_iter()
            .filter(|t| expired(t))
            .map(|t| t.id)
            .collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        let deleted = sqlx::query("DELETE FROM tokens WHERE id = ANY($1)")
            .bind(&doomed)
            .execute(self.pool()?)
            .await
            .map_err(fail)?;
        Ok(deleted.rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let answered =
            tokio::time::timeout(PING_TIMEOUT, sqlx::query("SELECT 1").execute(&self.pool)).await;
        let outcome = match answered {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(fail(error)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL did not answer within {}s",
                PING_TIMEOUT.as_secs()
            ))),
        };
        self.unreachable.store(outcome.is_err(), Ordering::Release);
        outcome
    }
}
