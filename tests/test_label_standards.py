"""Labels that tools outside bark_core read: IPTC XMP (checked with exiftool), mutagen tags, C2PA
Content Credentials (checked with c2pa's own reader), and no local paths in anything written."""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bark_core.artifacts import Audio, Provenance
from bark_core.cli.label import main as label_main
from bark_core.label import (
    IPTC_DIGITAL_SOURCE_TYPE,
    C2paSigningError,
    export_audio,
    labelled_wav_bytes,
    read_label,
    read_manifest,
    read_xmp,
    save_wav,
)
from bark_core.label import watermark as W

FORMATS = ("wav", "mp3", "flac", "ogg")
SR = 24_000


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is needed here (Debian: apt-get install libimage-exiftool-perl / ffmpeg)"
        (pytest.fail if os.environ.get("CI") else pytest.skip)(msg)
    return path


def exiftool(*paths: Path) -> dict[str, dict]:
    """exiftool's view of each file: group-1 names, so the XMP group (XMP-iptcExt) is part of the key."""
    out = subprocess.run([_tool("exiftool"), "-json", "-G1", "-a", *map(str, paths)], capture_output=True,
                         text=True, check=True).stdout
    return {Path(rec["SourceFile"]).name: rec for rec in json.loads(out)}


@pytest.fixture(scope="module")
def clip() -> Audio:
    rng = np.random.default_rng(5)
    t = np.arange(3 * SR) / SR
    voiced = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((140, 280, 420, 700, 1100), 1))
    x = 0.1 * voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.003 * rng.standard_normal(t.size)
    prov = Provenance(stage="decode", model="suno/bark:coarse_2.pt", seed=7, voice="v2/en_speaker_6")
    return Audio(provenance=prov, samples=x.astype(np.float32), sample_rate=SR)


# --- IPTC XMP, read by exiftool ------------------------------------------------------------------------


def test_every_format_and_write_path_carries_iptc_digital_source_type(tmp_path: Path, clip: Audio):
    _tool("ffmpeg")
    written = [export_audio(clip, tmp_path / f"export.{fmt}", text="hi") for fmt in FORMATS]
    written.append(save_wav(clip, tmp_path / "save_wav.wav"))
    plain = save_wav(clip, tmp_path / "plain.wav", label=False)
    for fmt in FORMATS:  # bark-core label, on a file without any label
        out = tmp_path / f"cli_label.{fmt}"
        assert label_main(["label", str(plain), str(out)]) == 0
        written.append(out)
    # bark-say and ComfyUI's saver write through export_audio too: tests/test_cli.py and
    # tests/test_nodes.py run exiftool on their files (the studio's export is export_audio as well)
    seen = exiftool(*written, plain)
    for path in written:
        rec = seen[path.name]
        assert rec.get("XMP-iptcExt:DigitalSourceType") == IPTC_DIGITAL_SOURCE_TYPE, (path.name, rec)
        assert rec.get("XMP-iptcExt:AISystemUsed") == "bark_core", path.name
        assert str(rec.get("XMP-xmp:CreatorTool", "")).startswith("bark_core"), path.name
        assert read_xmp(path)["Iptc4xmpExt:DigitalSourceType"] == IPTC_DIGITAL_SOURCE_TYPE
        assert W.detect(path).detected, path.name
    assert "XMP-iptcExt:DigitalSourceType" not in seen["plain.wav"]
    # the old fields stay where they were: the summary comment, and Vorbis/ID3 fields by name
    assert "AI_GENERATED=true" in seen["export.flac"]["Vorbis:Comment"]
    assert seen["export.ogg"]["Vorbis:AiGenerated"] in ("true", True)  # -json turns "true" into true
    assert "AI_GENERATED=true" in seen["export.mp3"]["ID3v2_4:Comment"]
    assert "AI_GENERATED=true" in seen["export.wav"]["RIFF:Comment"]


def test_mutagen_reads_the_tags_of_every_format(tmp_path: Path, clip: Audio):
    from mutagen import File
    from mutagen.oggvorbis import OggVorbis

    for fmt in FORMATS:
        path = export_audio(clip, tmp_path / f"t.{fmt}")
        if fmt == "ogg":  # the leading ID3 tag (exiftool's only Ogg XMP carrier) makes mutagen.File guess MP3
            blob = path.read_bytes()
            size = 10 + ((blob[6] << 21) | (blob[7] << 14) | (blob[8] << 7) | blob[9])
            tags = OggVorbis(__import__("io").BytesIO(blob[size:])).tags
            assert tags["AI_GENERATED"] == ["true"] and "AI_GENERATED=true" in tags["COMMENT"][0]
            label = json.loads(tags["BARK_LABEL"][0])
        elif fmt == "flac":
            tags = File(path).tags
            assert "AI_GENERATED=true" in tags["COMMENT"][0]  # COMMENT, as docs/label.md says
            label = json.loads(tags["BARK_LABEL"][0])
        else:  # WAV (id3 chunk) and MP3 (ID3v2.4)
            tags = File(path).tags
            assert str(tags["TXXX:AI_GENERATED"]) == "true"
            assert "AI_GENERATED=true" in str(tags["COMM::eng"])
            label = json.loads(str(tags["TXXX:BARK_LABEL"]))
        assert label == read_label(path)
        assert label["digital_source_type"] == IPTC_DIGITAL_SOURCE_TYPE


def test_files_from_before_the_xmp_carriers_still_read(tmp_path: Path, clip: Audio):
    """WAV files of the first label schema kept the JSON in a private ``bark`` chunk."""
    from bark_core.audio_io import riff_chunk, wav_bytes

    data = {"AI_GENERATED": True, "schema": "bark_core.label/1", "seed": 3}
    old = tmp_path / "old.wav"
    old.write_bytes(wav_bytes(clip.samples, SR, [riff_chunk(b"bark", json.dumps(data).encode())]))
    assert read_label(old) == data


# --- C2PA Content Credentials ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throw-away CA and signing certificate (EC P-256), made at run time and never kept."""
    pytest.importorskip("c2pa", reason="C2PA tests need the c2pa extra (pip install c2pa-python)")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bark-stages tests")])

    now = datetime.datetime.now(datetime.timezone.utc)
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False)

    def cert(subject: str, key, issuer, issuer_key, ca: bool) -> x509.Certificate:
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=7))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage),
                            critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if not ca:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("test CA", ca_key, name("test CA"), ca_key, True)
    leaf = cert("test signer", key, ca.subject, ca_key, False)
    folder = tmp_path_factory.mktemp("c2pa")
    chain, pem_key = folder / "chain.pem", folder / "key.pem"
    chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca)))
    pem_key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return chain, pem_key


@pytest.mark.parametrize("fmt", ("wav", "mp3", "flac"))
def test_c2pa_manifest_is_signed_and_validates(tmp_path: Path, clip: Audio, signing, fmt: str, monkeypatch):
    chain, key = signing
    monkeypatch.setenv("BARK_C2PA_CERT", str(chain))
    monkeypatch.setenv("BARK_C2PA_KEY", str(key))
    path = export_audio(clip, tmp_path / f"signed.{fmt}", model="suno/bark text_2.pt")
    manifest = read_manifest(path)
    assert manifest is not None and manifest["valid"] is True and manifest["state"] in ("Valid", "Trusted")
    assert manifest["failures"] == []
    assert manifest["digital_source_type"] == IPTC_DIGITAL_SOURCE_TYPE
    assert (manifest["generator"], manifest["model"]) == ("bark_core", "suno/bark text_2.pt")
    # signing comes last, so the other labels survive it
    assert read_xmp(path)["Iptc4xmpExt:DigitalSourceType"] == IPTC_DIGITAL_SOURCE_TYPE
    assert read_label(path)["model"] == "suno/bark text_2.pt" and W.detect(path).detected
    # one changed sample breaks the hash the manifest signs
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x55
    tampered = tmp_path / f"tampered.{fmt}"
    tampered.write_bytes(bytes(blob))
    assert read_manifest(tampered)["valid"] is False


def test_c2pa_from_arguments_and_clear_errors(tmp_path: Path, clip: Audio, signing, monkeypatch, caplog):
    chain, key = signing
    monkeypatch.delenv("BARK_C2PA_CERT", raising=False)
    monkeypatch.delenv("BARK_C2PA_KEY", raising=False)
    path = export_audio(clip, tmp_path / "a.wav", c2pa_cert=chain.read_text(), c2pa_key=key)
    assert read_manifest(path)["valid"] is True
    with pytest.raises(C2paSigningError, match="BARK_C2PA_KEY"):
        export_audio(clip, tmp_path / "b.wav", c2pa_cert=chain)
    with pytest.raises(C2paSigningError, match="does not exist"):
        export_audio(clip, tmp_path / "c.wav", c2pa_cert=tmp_path / "nope.pem", c2pa_key=key)
    assert not (tmp_path / "b.wav").exists() and not (tmp_path / "c.wav").exists()
    assert b"PRIVATE KEY" not in path.read_bytes()
    with caplog.at_level(logging.INFO, logger="bark_core.label"):  # OGG: no C2PA container, one info line
        ogg = export_audio(clip, tmp_path / "d.ogg", c2pa_cert=chain, c2pa_key=key)
    assert read_manifest(ogg) is None


def test_without_credentials_no_manifest_and_one_info_line(tmp_path: Path, clip: Audio, monkeypatch, caplog):
    from bark_core.label import c2pa_manifest

    monkeypatch.delenv("BARK_C2PA_CERT", raising=False)
    monkeypatch.delenv("BARK_C2PA_KEY", raising=False)
    monkeypatch.setattr(c2pa_manifest, "_told", set())
    with caplog.at_level(logging.INFO, logger="bark_core.label"):
        for i in range(3):
            path = export_audio(clip, tmp_path / f"u{i}.flac")
    lines = [r.getMessage() for r in caplog.records if "C2PA" in r.getMessage()]
    assert len(lines) == 1 and "BARK_C2PA_CERT" in lines[0]
    if read_manifest(path) is not None:  # only when c2pa is installed can it say "no manifest"
        pytest.fail(f"unsigned file has a manifest: {read_manifest(path)}")


def test_detect_reports_watermark_tags_and_c2pa(tmp_path: Path, clip: Audio, signing, monkeypatch, capsys):
    chain, key = signing
    signed = export_audio(clip, tmp_path / "s.mp3", c2pa_cert=chain, c2pa_key=key)
    plain = save_wav(clip, tmp_path / "p.wav", label=False)
    capsys.readouterr()
    assert label_main(["detect", "--json", str(signed), str(plain)]) == 1
    first, second = json.loads(capsys.readouterr().out)
    assert first["detected"] is True and first["label"]["digital_source_type"] == IPTC_DIGITAL_SOURCE_TYPE
    assert first["xmp"] == IPTC_DIGITAL_SOURCE_TYPE and first["c2pa"]["valid"] is True
    assert second["detected"] is False and second["label"] is None and second["xmp"] is None
    assert second["c2pa"] is None
    assert label_main(["detect", str(signed)]) == 0
    line = capsys.readouterr().out
    assert "watermark DETECTED" in line and "XMP trainedAlgorithmicMedia" in line and "C2PA valid" in line


# --- no private paths -----------------------------------------------------------------------------------


def test_labels_carry_no_local_paths(tmp_path: Path, tiny_dir: Path, monkeypatch, signing):
    """Weights and voices from local folders: every written label is grepped for home and temp paths."""
    from bark_core import BarkModels, generate, voice_from_artifacts

    chain, key = signing
    monkeypatch.setenv("BARK_C2PA_CERT", str(chain))
    monkeypatch.setenv("BARK_C2PA_KEY", str(key))
    models = BarkModels(tiny_dir, device="cpu")
    take = generate(models, "Private paths stay home.", "v2/en_speaker_6", seed=3, max_gen_duration_s=0.5)
    voice_file = voice_from_artifacts(take.semantic, take.coarse, take.fine, name="mine").save(tmp_path / "v.npz")
    again = generate(models, "Again.", str(voice_file), seed=4, max_gen_duration_s=0.5)
    meta = take.label_meta()
    written = [export_audio(take.audio, tmp_path / f"take.{fmt}", **meta) for fmt in FORMATS]
    written += [export_audio(again.audio, tmp_path / "again.flac", **again.label_meta()),
                save_wav(take.audio, tmp_path / "save.wav", project_dir=str(tmp_path / "work"))]
    (tmp_path / "studio.wav").write_bytes(labelled_wav_bytes(take.audio, **meta))
    written.append(tmp_path / "studio.wav")
    private = {str(Path.home()), tempfile.gettempdir(), os.path.realpath(tempfile.gettempdir()), str(tiny_dir),
               str(tmp_path)}
    for path in written:
        blob = path.read_bytes()
        for p in private:
            assert p.encode() not in blob, f"{path.name} carries the local path {p}"
            assert p.encode("utf-16-le") not in blob, f"{path.name} carries the local path {p} (UTF-16)"
        assert "sha256:" in read_label(path)["model"], path.name  # a content hash says which weights
    label = read_label(tmp_path / "take.mp3")
    assert "text=text.pt sha256:" in label["model"] and "coarse=coarse.pt sha256:" in label["model"], label["model"]
    assert read_label(tmp_path / "save.wav")["extra"]["project_dir"] == "work"
