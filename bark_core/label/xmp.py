"""The label as an XMP packet, the carrier that tools outside bark_core look in for "AI-generated".

IPTC's standard way to say that media was made by a trained model is the IPTC Extension property
``Iptc4xmpExt:DigitalSourceType`` with the value
``http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia``, inside the file's XMP
packet. Private tags (``AI_GENERATED``, ``BARK_LABEL``) are only read by tools that know them; this
packet is read by exiftool, Adobe's tools and the C2PA ecosystem. :mod:`bark_core.label.tags` puts
it where each format keeps XMP.

The packet is written from a template rather than with an RDF library: it holds a handful of
simple properties, and every value is XML-escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
}
PACKET_ID = "W5M0MpCehiHzreSzNTczkc9d"  # the fixed id every XMP packet wrapper carries
IPTC_DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _simple(prefix: str, name: str, value: Any) -> str:
    return f"   <{prefix}:{name}>{escape(str(value))}</{prefix}:{name}>\n"


def xmp_packet(data: dict[str, Any], description: str | None = None) -> bytes:
    """UTF-8 XMP packet for a label object (see :func:`bark_core.label.build_metadata`).

    Besides the digital source type it names the generator (``xmp:CreatorTool`` and IPTC 2025's
    ``AISystemUsed`` / ``AISystemVersionUsed``), the labelling time and a one-line description.
    """
    generator = str(data.get("generator", "bark_core"))
    version = str(data.get("generator_version", ""))
    body = _simple("Iptc4xmpExt", "DigitalSourceType", data["digital_source_type"])
    body += _simple("Iptc4xmpExt", "AISystemUsed", generator)
    if version:
        body += _simple("Iptc4xmpExt", "AISystemVersionUsed", version)
    body += _simple("xmp", "CreatorTool", f"{generator} {version}".strip())
    if data.get("labelled_at"):
        body += _simple("xmp", "CreateDate", data["labelled_at"])
    if description:
        body += (f"   <dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">{escape(description)}</rdf:li>"
                 "</rdf:Alt></dc:description>\n")
    namespaces = " ".join(f'xmlns:{p}="{NS[p]}"' for p in ("Iptc4xmpExt", "xmp", "dc"))
    text = (
        f'<?xpacket begin="\ufeff" id="{PACKET_ID}"?>\n'
        f'<x:xmpmeta xmlns:x="{NS["x"]}">\n'
        f' <rdf:RDF xmlns:rdf="{NS["rdf"]}">\n'
        f'  <rdf:Description rdf:about="" {namespaces}>\n'
        f"{body}"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return text.encode("utf-8")


def parse_xmp(blob: bytes) -> dict[str, str]:
    """The simple properties of an XMP packet as ``{"prefix:Name": value}``; {} when it is not XMP.

    Only what :func:`xmp_packet` writes is understood (simple properties and ``dc:description``),
    which is all :func:`bark_core.label.read_label` needs to recognise a label whose other tags
    were lost.
    """
    start = blob.find(b"<x:xmpmeta")
    end = blob.find(b"</x:xmpmeta>")
    if start < 0 or end < 0:
        return {}
    try:
        root = ET.fromstring(blob[start : end + len(b"</x:xmpmeta>")])
    except ET.ParseError:
        return {}
    prefixes = {uri: prefix for prefix, uri in NS.items()}
    out: dict[str, str] = {}
    for desc in root.iter(f"{{{NS['rdf']}}}Description"):
        for child in desc:
            uri, _, name = child.tag[1:].partition("}")
            key = f"{prefixes.get(uri, uri)}:{name}"
            text = (child.text or "").strip()
            if not text:  # rdf:Alt / rdf:Seq: take the first item
                item = next(child.iter(f"{{{NS['rdf']}}}li"), None)
                text = (item.text or "").strip() if item is not None else ""
            if text:
                out[key] = text
    return out
