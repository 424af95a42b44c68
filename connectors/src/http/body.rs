//! Reading a response body with a size cap, so a hostile or broken provider cannot make a
//! worker buffer gigabytes: the stream is abandoned as soon as the cap is passed.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

/// Why a capped read stopped early.
#[derive(Debug)]
pub(crate) enum BodyError<E> {
    /// More than the cap arrived (or was announced by `Content-Length`).
    TooLarge,
    /// The stream itself failed.
    Stream(E),
}

/// Reads `stream` to the end, failing once more than `limit` bytes have been seen. A
/// `Content-Length` above the limit fails before reading anything.
pub(crate) async fn read_capped<S, E>(
    stream: S,
    limit: usize,
    content_length: Option<u64>,
) -> Result<Bytes, BodyError<E>>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if content_length.is_some_and(|len| len > limit_u64) {
        return Err(BodyError::TooLarge);
    }
    // Trust the announced length only as a capacity hint, never beyond the cap.
    let hint = content_length.map_or(0, |len| usize::try_from(len).unwrap_or(limit).min(limit));
    let mut buf = BytesMut::with_capacity(hint);
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Stream)?;
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, &'static str>> {
        stream::iter(
            sizes
                .iter()
                .map(|&n| Ok(Bytes::from(vec![b'x'; n])))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn reads_up_to_the_limit() {
        let body = read_capped(chunks(&[4, 4, 2]), 10, None).await.unwrap();
        assert_eq!(body.len(), 10);
    }

    #[tokio::test]
    async fn stops_when_the_stream_passes_the_limit() {
        let endless = stream::repeat_with(|| Ok::<_, &str>(Bytes::from_static(b"0123456789")));
        assert!(matches!(
            read_capped(endless, 1000, None).await,
            Err(BodyError::TooLarge)
        ));
        assert!(matches!(
            read_capped(chunks(&[6, 5]), 10, None).await,
            Err(BodyError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn refuses_an_announced_length_over_the_limit() {
        assert!(matches!(
            read_capped(chunks(&[1]), 10, Some(11)).await,
            Err(BodyError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn passes_stream_errors_through() {
        let failing = stream::iter(vec![Ok(Bytes::from_static(b"ab")), Err("reset")]);
        assert!(matches!(
            read_capped(failing, 10, None).await,
            Err(BodyError::Stream("reset"))
        ));
    }
}
