//! The object store: where it is, the layout of paths in it, uploads.
//!
//! Layout under the store's prefix:
//! `tenants/<tenant>/datasets/<dataset>/parts/<part>.parquet` for dataset
//! parts, `tenants/<tenant>/results/<job>/attempt-<n>.parquet` for the
//! result of each attempt of a job.
//! The database keeps part paths relative to the prefix.

use std::sync::Arc;

use crunch_queue::{JobId, TenantId};
use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::{
    ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart, aws::AmazonS3Builder,
    local::LocalFileSystem, path::Path,
};
use tokio::io::AsyncReadExt;

use crate::{
    error::StoreError,
    ids::{DatasetId, PartId},
};

/// Files up to this size are uploaded with one request.
const MULTIPART_THRESHOLD: u64 = 10 << 20;
/// Part size of multipart uploads (S3 wants at least 5 MiB).
const UPLOAD_PART: usize = 8 << 20;
/// Parts of one upload in flight at once.
const UPLOAD_CONCURRENCY: usize = 4;
/// Read size from the local Parquet file during a multipart upload.
const READ_CHUNK: usize = 1 << 20;

/// An object store, its prefix, and the URL DataFusion knows it by.
#[derive(Debug)]
pub(crate) struct Objects {
    pub(crate) store: Arc<dyn ObjectStore>,
    prefix: Path,
    pub(crate) url: ObjectStoreUrl,
    /// The directory of a local store: deletions remove the directories
    /// they leave empty below it (S3 has no directories to leave).
    local_dir: Option<std::path::PathBuf>,
}

impl Objects {
    /// Opens `url`: `file:///absolute/dir`, `s3://bucket/optional/prefix`,
    /// or a plain directory path. A local directory is created if missing.
    pub(crate) fn open(url: &str) -> Result<Self, StoreError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::Config(format!("no bucket in {url:?}")));
            }
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()?;
            let url = ObjectStoreUrl::parse(format!("s3://{bucket}")).map_err(|error| {
                StoreError::Config(format!("bad bucket name {bucket:?}: {error}"))
            })?;
            return Ok(Objects {
                store: Arc::new(store),
                prefix: Path::from(prefix),
                url,
                local_dir: None,
            });
        }
        let dir = match url.strip_prefix("file://") {
            Some(dir) if dir.starts_with('/') => std::path::PathBuf::from(dir),
            Some(_) => {
                return Err(StoreError::Config(format!(
                    "{url:?} is not an absolute file URL (file:///dir)"
                )));
            }
            None if url.contains("://") => {
                return Err(StoreError::Config(format!("unsupported store URL {url:?}")));
            }
            None => std::path::PathBuf::from(url),
        };
        std::fs::create_dir_all(&dir)?;
        let dir = std::fs::canonicalize(&dir)?;
        // The whole file system under "file://", as DataFusion registers it
        // by default, with the directory as the prefix of every path: table
        // URLs are then plain file URLs of the files.
        let prefix = Path::from_absolute_path(&dir)
            .map_err(|error| StoreError::Config(format!("bad directory {dir:?}: {error}")))?;
        Ok(Objects {
            store: Arc::new(LocalFileSystem::new()),
            prefix,
            url: ObjectStoreUrl::local_filesystem(),
            local_dir: Some(dir),
        })
    }

    /// A part's path relative to the prefix, as the database keeps it.
    pub(crate) fn part_key(tenant: TenantId, dataset: DatasetId, part: PartId) -> String {
        format!("tenants/{tenant}/datasets/{dataset}/parts/{part}.parquet")
    }

    /// The full path of a key relative to the prefix.
    pub(crate) fn resolve(&self, key: &str) -> Path {
        self.prefix.parts().chain(Path::from(key).parts()).collect()
    }

    /// Where one attempt of a job writes its result.
    pub(crate) fn result_path(&self, tenant: TenantId, job: JobId, attempt: i32) -> Path {
        self.resolve(&format!(
            "tenants/{tenant}/results/{job}/attempt-{attempt}.parquet"
        ))
    }

    /// Uploads the `size` bytes of `file` to `path`: one request for small
    /// files, a multipart upload (aborted on failure) for large ones.
    pub(crate) async fn upload(
        &self,
        path: &Path,
        file: std::fs::File,
        size: u64,
    ) -> Result<(), StoreError> {
        let mut file = tokio::fs::File::from_std(file);
        if size <= MULTIPART_THRESHOLD {
            let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.read_to_end(&mut buf).await?;
            self.store.put(path, PutPayload::from(buf)).await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART);
        let mut buf = vec![0u8; READ_CHUNK];
        let copied: Result<(), StoreError> = async {
            loop {
                let read = file.read(&mut buf).await?;
                if read == 0 {
                    return Ok(());
                }
                writer.wait_for_capacity(UPLOAD_CONCURRENCY).await?;
                writer.write(&buf[..read]);
            }
        }
        .await;
        match copied {
            Ok(()) => {
                writer.finish().await?;
                Ok(())
            }
            Err(error) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(%path, error = %abort, "aborting a failed multipart upload failed");
                }
                Err(error)
            }
        }
    }

    /// Deletes objects, logging (not returning) failures: callers delete
    /// after the rows are gone, when an orphaned object is only wasted
    /// space until the sweep ([`crate::sweep`]) finds it. Returns how many
    /// are gone (already gone counts).
    pub(crate) async fn delete_quietly(&self, paths: impl IntoIterator<Item = Path>) -> u64 {
        let mut gone = 0;
        for path in paths {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    gone += 1;
                    self.remove_empty_parents(&path);
                }
                Err(error) => {
                    tracing::warn!(%path, %error, "could not delete an object; the sweep will retry");
                }
            }
        }
        gone
    }

    /// In a local store, removes the directories above a deleted object
    /// that it left empty, up to the store's directory: a dataset's or a
    /// job's directory goes with its last file. A directory that is not
    /// empty (or is being filled again) stays.
    fn remove_empty_parents(&self, path: &Path) {
        let Some(root) = &self.local_dir else {
            return;
        };
        let file = std::path::Path::new("/").join(path.as_ref());
        let mut dir = file.parent();
        while let Some(d) = dir {
            if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    /// The store's prefix.
    pub(crate) fn prefix(&self) -> &Path {
        &self.prefix
    }
}
