//! Buckets in memory, for the functions' unit tests: the same three calls over a map, and a
//! switch that makes every call fail as an unreachable bucket would.
use crate::{Object, Objects, ObjectsError, PutNew};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// (bucket, key) -> object.
pub type Contents = BTreeMap<(String, String), Object>;

#[derive(Debug, Clone, Default)]
pub struct Memory {
    contents: Arc<Mutex<Contents>>,
    failing: bool,
}

impl Memory {
    /// A store whose every call fails.
    pub fn failing() -> Memory {
        Memory {
            failing: true,
            ..Memory::default()
        }
    }

    /// Everything stored, for comparing before and after a request.
    pub fn contents(&self) -> Contents {
        self.contents.lock().expect("memory lock").clone()
    }

    fn check(&self, bucket: &str, key: &str) -> Result<(), ObjectsError> {
        match self.failing {
            true => Err(ObjectsError {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                message: "service unavailable".to_owned(),
            }),
            false => Ok(()),
        }
    }
}

fn object(body: Vec<u8>, content_type: &str) -> Object {
    Object {
        body,
        content_type: Some(content_type.to_owned()),
    }
}

impl Objects for Memory {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Object>, ObjectsError> {
        self.check(bucket, key)?;
        let contents = self.contents.lock().expect("memory lock");
        Ok(contents.get(&(bucket.to_owned(), key.to_owned())).cloned())
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectsError> {
        self.check(bucket, key)?;
        let mut contents = self.contents.lock().expect("memory lock");
        contents.insert(
            (bucket.to_owned(), key.to_owned()),
            object(body, content_type),
        );
        Ok(())
    }

    async fn put_new(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<PutNew, ObjectsError> {
        self.check(bucket, key)?;
        let mut contents = self.contents.lock().expect("memory lock");
        let entry = contents.entry((bucket.to_owned(), key.to_owned()));
        match entry {
            std::collections::btree_map::Entry::Occupied(_) => Ok(PutNew::Exists),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(object(body, content_type));
                Ok(PutNew::Created)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_new_writes_only_a_free_key() {
        let m = Memory::default();
        assert_eq!(
            m.put_new("b", "k", b"one".to_vec(), "text/plain")
                .await
                .unwrap(),
            PutNew::Created
        );
        assert_eq!(
            m.put_new("b", "k", b"two".to_vec(), "text/plain")
                .await
                .unwrap(),
            PutNew::Exists
        );
        assert_eq!(m.get("b", "k").await.unwrap().unwrap().body, b"one");
        assert_eq!(m.get("other", "k").await.unwrap(), None);
        assert!(Memory::failing().get("b", "k").await.is_err());
    }
}
