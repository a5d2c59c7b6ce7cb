//! Media referenced by OpenAI content parts (`image_url`, `file`): `data:` URLs and the MIME
//! type of a linked file, which adapters for APIs with typed media blocks (Anthropic, Gemini)
//! must spell out.

/// A `data:` URL split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataUrl<'a> {
    /// The media type, lower-cased by the caller if needed; `None` when the URL names none.
    pub mime_type: Option<&'a str>,
    /// The payload after the comma, still encoded.
    pub data: &'a str,
    /// Whether the payload is base64 (`;base64`); otherwise it is percent-encoded text.
    pub base64: bool,
}

/// Splits `data:[<media-type>][;param=value]*[;base64],<data>` (RFC 2397). `None` when `url`
/// is not a `data:` URL or has no comma.
pub fn parse_data_url(url: &str) -> Option<DataUrl<'_>> {
    let scheme = url.get(..5)?;
    if !scheme.eq_ignore_ascii_case("data:") {
        return None;
    }
    let (header, data) = url[5..].split_once(',')?;
    let mut params = header.split(';');
    let mime_type = params.next().map(str::trim).filter(|mime| !mime.is_empty());
    let base64 = params.any(|param| param.trim().eq_ignore_ascii_case("base64"));
    Some(DataUrl {
        mime_type,
        data,
        base64,
    })
}

/// The MIME type a linked file's extension suggests (query and fragment ignored), for the
/// image, audio, video and document types multimodal APIs accept; `None` when unknown.
pub fn mime_type_from_url(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or(path);
    let (_, extension) = name.rsplit_once('.')?;
    let mime = match extension.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "wav" => "audio/wav",
        "mp3" => "audio/mp3",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "aac" => "audio/aac",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/mov",
        "txt" => "text/plain",
        _ => return None,
    };
    Some(mime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_are_split() {
        assert_eq!(
            parse_data_url("data:image/png;base64,iVBORw0KGgo="),
            Some(DataUrl {
                mime_type: Some("image/png"),
                data: "iVBORw0KGgo=",
                base64: true
            })
        );
        assert_eq!(
            parse_data_url("DATA:text/plain;charset=utf-8,hello%20there"),
            Some(DataUrl {
                mime_type: Some("text/plain"),
                data: "hello%20there",
                base64: false
            })
        );
        assert_eq!(
            parse_data_url("data:;base64,AAAA"),
            Some(DataUrl {
                mime_type: None,
                data: "AAAA",
                base64: true
            })
        );
        assert_eq!(parse_data_url("data:image/png;base64"), None);
        assert_eq!(parse_data_url("https://example.com/a.png"), None);
        assert_eq!(parse_data_url("dat"), None);
    }

    #[test]
    fn mime_types_follow_the_extension() {
        assert_eq!(
            mime_type_from_url("https://example.com/cat.PNG?size=2#x"),
            Some("image/png")
        );
        assert_eq!(
            mime_type_from_url("gs://bucket/photo.jpeg"),
            Some("image/jpeg")
        );
        assert_eq!(
            mime_type_from_url("https://example.com/doc.pdf"),
            Some("application/pdf")
        );
        assert_eq!(mime_type_from_url("https://example.com/image"), None);
        assert_eq!(mime_type_from_url("https://example.com.au/"), None);
        assert_eq!(mime_type_from_url("https://example.com/a.exe"), None);
    }
}
