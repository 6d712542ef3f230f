//! The content versions sessions were started from: each version's files,
//! written once when a server first runs it, read when a session of that
//! version is resumed by a server whose own content has moved on.

use super::*;

impl Database {
    /// Stores the files (a bundle the caller encodes) of content `version`;
    /// a version already stored is left as it is.
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn store_content_version(&self, version: u64, files: &[u8]) -> Result<(), DbError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            diesel::insert_into(content_versions::table)
                .values((
                    content_versions::version.eq(to_db(version)),
                    content_versions::files.eq(files),
                    content_versions::created_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?
        });
        Ok(())
    }

    /// The files stored for content `version`, if any.
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn content_version_files(&self, version: u64) -> Result<Option<Vec<u8>>, DbError> {
        Ok(with_conn!(self, |conn| {
            content_versions::table
                .find(to_db(version))
                .select(content_versions::files)
                .first::<Vec<u8>>(conn)
                .await
                .optional()?
        }))
    }
}
