//! NETCONF message framing (RFC 6242): base 1.0 end-of-message `]]>]]>` and base 1.1 chunked
//! framing, shared by the client and the `esi netsim` server.

/// The end-of-message marker of base 1.0.
pub const EOM: &[u8] = b"]]>]]>";

/// Largest message accepted (a guard against a lying peer).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Which framing a session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `]]>]]>` after each message (base 1.0; always used for `<hello>`).
    EndOfMessage,
    /// `\n#LEN\n…\n##\n` chunks (base 1.1).
    Chunked,
}

/// Malformed framing from the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A chunk header that is not `\n#LEN\n` or `\n##\n`.
    #[error("bad chunk header")]
    BadChunkHeader,
    /// A message larger than [`MAX_MESSAGE`].
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    /// Not UTF-8.
    #[error("message is not UTF-8")]
    NotUtf8,
}

/// Frames one message.
pub fn encode(framing: Framing, xml: &str) -> Vec<u8> {
    match framing {
        Framing::EndOfMessage => {
            let mut v = Vec::with_capacity(xml.len() + EOM.len());
            v.extend_from_slice(xml.as_bytes());
            v.extend_from_slice(EOM);
            v
        }
        Framing::Chunked => format!("\n#{}\n{}\n##\n", xml.len(), xml).into_bytes(),
    }
}

/// Splits a byte stream into messages; the framing may change between messages (after the
/// hello exchange).
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    partial: Vec<u8>,
    /// Current framing.
    pub framing: Framing,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            buf: Vec::new(),
            partial: Vec::new(),
            framing: Framing::EndOfMessage,
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

impl Decoder {
    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, if one has arrived.
    pub fn next_message(&mut self) -> Result<Option<String>, FramingError> {
        match self.framing {
            Framing::EndOfMessage => match find(&self.buf, EOM) {
                Some(p) => {
                    let msg: Vec<u8> = self.buf.drain(..p + EOM.len()).take(p).collect();
                    String::from_utf8(msg)
                        .map(Some)
                        .map_err(|_| FramingError::NotUtf8)
                }
                None if self.buf.len() > MAX_MESSAGE => Err(FramingError::TooLarge),
                None => Ok(None),
            },
            Framing::Chunked => loop {
                // tolerate whitespace between messages (some peers send a newline)
                if self.partial.is_empty() {
                    let skip = self
                        .buf
                        .iter()
                        .take_while(|b| matches!(b, b'\r' | b' ' | b'\t'))
                        .count();
                    self.buf.drain(..skip);
                }
                if self.buf.len() < 4 {
                    return Ok(None);
                }
                if self.buf.starts_with(b"\n##\n") {
                    self.buf.drain(..4);
                    let msg = std::mem::take(&mut self.partial);
                    return String::from_utf8(msg)
                        .map(Some)
                        .map_err(|_| FramingError::NotUtf8);
                }
                if !self.buf.starts_with(b"\n#") {
                    return Err(FramingError::BadChunkHeader);
                }
                let Some(nl) = self.buf[2..].iter().position(|&b| b == b'\n') else {
                    if self.buf.len() > 16 {
                        return Err(FramingError::BadChunkHeader);
                    }
                    return Ok(None);
                };
                let nl = nl + 2;
                let len: usize = std::str::from_utf8(&self.buf[2..nl])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .filter(|&l| l > 0)
                    .ok_or(FramingError::BadChunkHeader)?;
                if self.partial.len() + len > MAX_MESSAGE {
                    return Err(FramingError::TooLarge);
                }
                if self.buf.len() < nl + 1 + len {
                    return Ok(None);
                }
                self.partial
                    .extend_from_slice(&self.buf[nl + 1..nl + 1 + len]);
                self.buf.drain(..nl + 1 + len);
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_framings_round_trip_in_pieces() {
        let mut d = Decoder::default();
        let mut stream = encode(Framing::EndOfMessage, "<hello/>");
        stream.extend(encode(Framing::Chunked, "<rpc>é</rpc>"));
        stream.extend(b"\n#3\nabc\n#2\nde\n##\n");
        let mut out = Vec::new();
        for b in stream.chunks(3) {
            d.push(b);
            while let Some(m) = d.next_message().unwrap() {
                out.push(m);
                d.framing = Framing::Chunked;
            }
        }
        assert_eq!(out, ["<hello/>", "<rpc>é</rpc>", "abcde"]);
        d.push(b"\nXX\n");
        assert_eq!(d.next_message(), Err(FramingError::BadChunkHeader));
    }
}
