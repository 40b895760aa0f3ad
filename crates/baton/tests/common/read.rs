//! Reading a Payload back whole, for the store and merge tests.

use baton::{Payload, Store};
use tokio::io::AsyncReadExt;

/// Every byte a reader of `payload` gets, each object verified on the way.
pub async fn read_all(store: &Store, payload: &Payload) -> Result<Vec<u8>, baton::Error> {
    let mut reader = store.read_payload(payload).await?;
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .await
        .map_err(baton::error::from_io)?;
    Ok(out)
}
