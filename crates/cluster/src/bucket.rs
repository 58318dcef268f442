//! `Bucket`: where record data lives, the object store `--object-store` names, and the
//! key of each object in it.
//!
//! Two kinds of URL:
//! - `s3://bucket[/prefix][?option=value&...]`: any S3-compatible store. The options are
//!   the `object_store` crate's S3 keys (`endpoint`, `region`, `allow_http`,
//!   `virtual_hosted_style_request`, ...); credentials come from the environment the way
//!   that crate reads them (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!   `AWS_SESSION_TOKEN`, or the instance's role), and an option in the URL wins over the
//!   environment.
//! - `file:///absolute/directory`: a directory every broker sees (one machine, or a shared
//!   file system). It holds what a bucket would, in files.
//!
//! Every call is bounded: a store that hangs or refuses makes the call fail (retriably)
//! within [`REQUEST_TIMEOUT`] and a few retries, so a produce request is answered with a
//! retriable error rather than waiting for an outage to end.

use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::config::redact;
use crate::error::ClusterError;

/// One HTTP request to the store, connect included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connecting to the store.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Retries of one call inside the `object_store` client (on 5xx answers, throttling and
/// connection errors), and the time they may take in all.
pub const RETRIES_MAX: usize = 3;
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(15);

/// The object store record data is kept in, and the prefix of this cluster's keys.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// The URL without secrets, for messages.
    shown: String,
}

impl Bucket {
    /// Opens the store `url` names (see the module's opening); the error is one sentence
    /// naming `--object-store` and the fix.
    pub fn from_url(url: &str) -> Result<Bucket, ClusterError> {
        let shown = redact(url);
        let bad = |why: String| ClusterError::Config(format!("--object-store {shown}: {why}"));
        if let Some(rest) = url.strip_prefix("s3://") {
            let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
            if bucket.is_empty() {
                return Err(bad(
                    "the URL names no bucket; write it as s3://bucket/prefix?endpoint=...".into(),
                ));
            }
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry_config())
                .with_client_options(client_options());
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let config_key = AmazonS3ConfigKey::from_str(key).map_err(|_| {
                    bad(format!(
                        "{key:?} is not an S3 option; use endpoint, region, allow_http or \
                         another key of the object_store crate's S3 configuration"
                    ))
                })?;
                builder = builder.with_config(config_key, percent_decode(value));
            }
            let store = builder.build().map_err(|e| bad(e.to_string()))?;
            Ok(Bucket {
                store: Arc::new(store),
                prefix: Path::from(prefix),
                shown,
            })
        } else if let Some(dir) = url.strip_prefix("file://") {
            if !dir.starts_with('/') {
                return Err(bad(
                    "a file URL needs an absolute directory, as in file:///var/lib/weir-bucket"
                        .into(),
                ));
            }
            std::fs::create_dir_all(dir)
                .map_err(|e| bad(format!("cannot create the directory ({e})")))?;
            let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(e.to_string()))?;
            Ok(Bucket {
                store: Arc::new(store),
                prefix: Path::default(),
                shown,
            })
        } else {
            Err(bad(
                "give an S3 bucket as s3://bucket/prefix?endpoint=... or a directory as \
                 file:///directory"
                    .into(),
            ))
        }
    }

    /// The key of object `object_id`: zero-padded so keys sort in the order objects were
    /// made.
    pub fn object_key(&self, object_id: i64) -> Path {
        self.prefix
            .clone()
            .join("objects")
            .join(format!("{object_id:020}.wob").as_str())
    }

    /// Stores object `object_id` whole.
    pub async fn put(&self, object_id: i64, bytes: Bytes) -> Result<(), ClusterError> {
        let key = self.object_key(object_id);
        self.bounded("a PUT", self.store.put(&key, bytes.into()))
            .await
            .map(|_| ())
    }

    /// The bytes `range` of object `object_id`.
    pub async fn get_range(
        &self,
        object_id: i64,
        range: Range<u64>,
    ) -> Result<Bytes, ClusterError> {
        let key = self.object_key(object_id);
        self.bounded("a ranged GET", self.store.get_range(&key, range))
            .await
    }

    /// Deletes object `object_id`; deleting one that is gone succeeds.
    pub async fn delete(&self, object_id: i64) -> Result<(), ClusterError> {
        let key = self.object_key(object_id);
        match self.bounded("a DELETE", self.store.delete(&key)).await {
            Err(ClusterError::ObjectStore {
                not_found: true, ..
            }) => Ok(()),
            other => other,
        }
    }

    /// Takes the next object id and records the object in PostgreSQL as pending (its PUT
    /// may exist), written by `node_id`, before the PUT: the janitor can then always find
    /// and delete an object whose commit never comes.
    pub async fn reserve_object(
        &self,
        session: &crate::pg::Session,
        node_id: i32,
        size_bytes: usize,
        timeout: Duration,
    ) -> Result<i64, ClusterError> {
        session
            .bounded("the reservation of an object id", timeout, async {
                let client = session.client().await?;
                let object_id: i64 = client
                    .query_one("SELECT nextval('object_ids')", &[])
                    .await?
                    .get(0);
                let key = self.object_key(object_id).to_string();
                client
                    .execute(
                        "INSERT INTO objects (object_id, key, size_bytes, state, writer_node) \
                         VALUES ($1, $2, $3, 0, $4)",
                        &[&object_id, &key, &(size_bytes as i64), &node_id],
                    )
                    .await?;
                Ok(object_id)
            })
            .await
    }

    /// The URL without secrets.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    async fn bounded<T>(
        &self,
        what: &'static str,
        call: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T, ClusterError> {
        // The client's own timeouts bound each request; this bounds its retries too.
        let limit = RETRY_TIMEOUT + REQUEST_TIMEOUT;
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(ClusterError::ObjectStore {
                what,
                not_found: matches!(e, object_store::Error::NotFound { .. }),
                message: e.to_string(),
            }),
            Err(_) => Err(ClusterError::ObjectStore {
                what,
                not_found: false,
                message: format!("{} did not answer within {limit:?}", self.shown),
            }),
        }
    }
}

fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: RETRIES_MAX,
        retry_timeout: RETRY_TIMEOUT,
    }
}

fn client_options() -> ClientOptions {
    ClientOptions::new()
        .with_timeout(REQUEST_TIMEOUT)
        .with_connect_timeout(CONNECT_TIMEOUT)
}

/// Undoes the `%XX` escapes of a URL's query value (an endpoint is often written escaped).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_creation_order() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = Bucket::from_url(&format!("file://{}", dir.path().display())).unwrap();
        assert_eq!(
            bucket.object_key(42).to_string(),
            "objects/00000000000000000042.wob"
        );
        assert!(bucket.object_key(9).to_string() < bucket.object_key(10).to_string());
    }

    #[test]
    fn bad_urls_are_refused_with_a_sentence() {
        for (url, says) in [
            ("http://example", "give an S3 bucket"),
            ("s3://?endpoint=x", "names no bucket"),
            ("s3://b?no_such_option=1", "is not an S3 option"),
            ("file://relative/dir", "absolute directory"),
        ] {
            let e = Bucket::from_url(url).unwrap_err().to_string();
            assert!(e.starts_with("--object-store"), "{e}");
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn s3_urls_take_their_options() {
        let bucket = Bucket::from_url(
            "s3://weir-test/a/b?endpoint=http%3A%2F%2F127.0.0.1%3A8333&region=us-east-1&allow_http=true",
        )
        .unwrap();
        assert_eq!(
            bucket.object_key(1).to_string(),
            "a/b/objects/00000000000000000001.wob"
        );
        assert_eq!(percent_decode("http%3A%2F%2Fh%3A1"), "http://h:1");
    }

    #[tokio::test]
    async fn a_file_bucket_round_trips_ranges_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = Bucket::from_url(&format!("file://{}", dir.path().display())).unwrap();
        bucket
            .put(7, Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        assert_eq!(&bucket.get_range(7, 2..5).await.unwrap()[..], b"234");
        bucket.delete(7).await.unwrap();
        bucket.delete(7).await.unwrap();
        let e = bucket.get_range(7, 0..1).await.unwrap_err();
        assert!(
            matches!(
                e,
                ClusterError::ObjectStore {
                    not_found: true,
                    ..
                }
            ),
            "{e}"
        );
    }
}
