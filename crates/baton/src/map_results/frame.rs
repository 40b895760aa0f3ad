//! The top-level JSON values of a stream, one at a time, as their bytes: the
//! elements of one array, or values one after another (JSON lines). Each is then
//! parsed from its slice, which serde_json does several times faster than from a
//! reader (it reads a reader a byte at a time); memory holds one value.

use std::io::BufRead;

use crate::error::Error;

pub(super) struct Values<R> {
    reader: R,
    value: Vec<u8>,
    state: State,
    max_bytes: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    /// In an array: before its first element, or after an element.
    ArrayFirst,
    ArrayNext,
    /// Values one after another.
    Lines,
    Done,
}

fn malformed(message: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("not a ResultWriter result file: {message}"))
}

impl<R: BufRead> Values<R> {
    /// Values of at most `max_bytes` each (a longer one is an error).
    pub(super) fn new(reader: R, max_bytes: usize) -> Values<R> {
        Values {
            reader,
            value: Vec::new(),
            state: State::Start,
            max_bytes,
        }
    }

    /// The next value's bytes; `None` at the end, once only whitespace was found
    /// after the last (read to the end of the stream: a verified reader checks its
    /// size and hash there).
    pub(super) fn next_value(&mut self) -> Result<Option<&[u8]>, Error> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Start => match self.skip_whitespace()? {
                    None => self.state = State::Done,
                    Some(b'[') => {
                        self.reader.consume(1);
                        self.state = State::ArrayFirst;
                    }
                    Some(_) => self.state = State::Lines,
                },
                State::ArrayFirst => match self.skip_whitespace()? {
                    Some(b']') => return self.end_of_array(),
                    Some(_) => {
                        self.state = State::ArrayNext;
                        return self.read_value().map(Some);
                    }
                    None => return Err(malformed("the array is not closed")),
                },
                State::ArrayNext => match self.skip_whitespace()? {
                    Some(b',') => {
                        self.reader.consume(1);
                        match self.skip_whitespace()? {
                            Some(b']') | None => {
                                return Err(malformed("a comma before the end of the array"));
                            }
                            Some(_) => return self.read_value().map(Some),
                        }
                    }
                    Some(b']') => return self.end_of_array(),
                    Some(other) => {
                        return Err(malformed(format!(
                            "{:?} after an entry, where a comma or the array's end belongs",
                            char::from(other)
                        )));
                    }
                    None => return Err(malformed("the array is not closed")),
                },
                State::Lines => match self.skip_whitespace()? {
                    None => self.state = State::Done,
                    Some(_) => return self.read_value().map(Some),
                },
            }
        }
    }

    fn end_of_array(&mut self) -> Result<Option<&[u8]>, Error> {
        self.reader.consume(1);
        self.state = State::Done;
        match self.skip_whitespace()? {
            None => Ok(None),
            Some(other) => Err(malformed(format!(
                "{:?} after the array's end",
                char::from(other)
            ))),
        }
    }

    /// The next byte that is not whitespace, left unread; `None` at the end.
    fn skip_whitespace(&mut self) -> Result<Option<u8>, Error> {
        loop {
            let buf = self.reader.fill_buf().map_err(crate::error::from_io)?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(at) => {
                    let byte = buf[at];
                    self.reader.consume(at);
                    return Ok(Some(byte));
                }
                None => {
                    let all = buf.len();
                    self.reader.consume(all);
                }
            }
        }
    }

    /// One value's bytes: an object or array up to its closing bracket (strings
    /// and escapes skipped), a string up to its closing quote, anything else up to
    /// the next delimiter. Whether it is valid JSON is the parser's to say.
    fn read_value(&mut self) -> Result<&[u8], Error> {
        self.value.clear();
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let mut started = false;
        loop {
            let buf = self.reader.fill_buf().map_err(crate::error::from_io)?;
            if buf.is_empty() {
                if started && depth == 0 && !in_string {
                    // A scalar that ends the stream.
                    return Ok(&self.value);
                }
                return Err(malformed("it ends in the middle of an entry"));
            }
            let mut end = None;
            for (i, &b) in buf.iter().enumerate() {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    b',' | b']' | b'}' if depth == 0 => {
                        end = Some(i);
                        break;
                    }
                    b if depth == 0 && b.is_ascii_whitespace() && started => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
                started = true;
            }
            if end == Some(0) && self.value.is_empty() {
                return Err(malformed("an entry is missing"));
            }
            let taken = end.unwrap_or(buf.len());
            if self.value.len() + taken > self.max_bytes {
                return Err(malformed(format!(
                    "an entry of more than {} bytes",
                    self.max_bytes
                )));
            }
            self.value.extend_from_slice(&buf[..taken]);
            self.reader.consume(taken);
            if end.is_some() {
                return Ok(&self.value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Result<Vec<String>, Error> {
        let mut values = Values::new(text.as_bytes(), 1_000);
        let mut out = Vec::new();
        while let Some(v) = values.next_value()? {
            out.push(String::from_utf8(v.to_vec()).unwrap());
        }
        Ok(out)
    }

    #[test]
    fn values_are_framed_whatever_their_strings_hold() {
        let tricky = r#"{"a":"]},\"[{","b":[1,{"c":"\\"}],"d":{}}"#;
        assert_eq!(
            all(&format!(" [ {tricky} ,\n{{}} ] \n")).unwrap(),
            [tricky, "{}"]
        );
        assert_eq!(all(&format!("{tricky}\n{{}}\n")).unwrap(), [tricky, "{}"]);
        assert_eq!(all(&format!("{tricky}{{}}")).unwrap(), [tricky, "{}"]);
        assert_eq!(all("[1, \"x,]\", true]").unwrap(), ["1", "\"x,]\"", "true"]);
        assert_eq!(all("[]").unwrap(), Vec::<String>::new());
        assert_eq!(all("  ").unwrap(), Vec::<String>::new());
        assert_eq!(all("3").unwrap(), ["3"]);
    }

    #[test]
    fn broken_streams_are_malformed() {
        for bad in [
            "[{}",
            "[{},]",
            "[{} {}]",
            "[{}] x",
            "[{\"a\": 1",
            "{\"a\": \"",
            "[,{}]",
        ] {
            let err = all(bad).unwrap_err();
            assert_eq!(err.name(), "Baton.InvalidInput", "{bad}: {err}");
        }
        let long = format!("[\"{}\"]", "x".repeat(2_000));
        assert!(
            all(&long)
                .unwrap_err()
                .to_string()
                .contains("more than 1000 bytes")
        );
    }
}
