"""schemathesis hooks of schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

The media sends' multipart `file` part lists, in its `encoding`, the file types the kind
accepts (the server sniffs the bytes; a file of another type is 415). schemathesis makes
files of a listed type only from a registered strategy, else random bytes: these give it
files of each type, as the server's sniffer recognises them (the signature, then any
bytes), so every multipart body it generates from the schema is one the server accepts.
"""
from hypothesis import strategies as st

import schemathesis


def _file(*prefixes):
    """A file starting with one of `prefixes`, then up to 256 arbitrary bytes."""
    return st.tuples(st.sampled_from(prefixes), st.binary(max_size=256)).map(lambda t: t[0] + t[1])


def _webp():
    return st.binary(min_size=4, max_size=4).map(lambda size: b"RIFF" + size + b"WEBP")


def _ogg_opus():
    return st.binary(min_size=24, max_size=24).map(lambda mid: b"OggS" + mid + b"OpusHead")


_BOX = b"\x00\x00\x00\x20ftyp"

schemathesis.openapi.media_type("image/jpeg", _file(b"\xff\xd8\xff"))
schemathesis.openapi.media_type("image/png", _file(b"\x89PNG\r\n\x1a\n"))
schemathesis.openapi.media_type("image/webp", st.tuples(_webp(), st.binary(max_size=256)).map(lambda t: t[0] + t[1]))
schemathesis.openapi.media_type("video/mp4", _file(_BOX + b"isom", _BOX + b"mp42"))
# Ogg Opus: an Ogg file, and the only one a voice note (`voice_note`) takes.
schemathesis.openapi.media_type("audio/ogg", st.tuples(_ogg_opus(), st.binary(max_size=256)).map(lambda t: t[0] + t[1]))
