"""Voices (Bark's history prompts): presets, .npz files, voices taken from a generation, saving."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import bark_core
from bark_core import (
    COMMON_RIGHTS,
    ArtifactError,
    CoarseCodes,
    FineCodes,
    ParameterError,
    RecordingWarning,
    RightsError,
    SemanticTokens,
    VoiceError,
    load_voice_file,
    voice_from_audio,
)
from bark_core.models import DEFAULT_QUANTIZER, KNOWN_QUANTIZERS

from . import _comfy, files
from ._api import io
from .audio import one_clip
from .handle import BarkHandle
from .types import CATEGORY, Coarse, Fine, Semantic, Voice, models_input


def preset_options() -> list[str]:
    """Every built-in preset as "Language: name", ordered by language, so the list reads grouped."""
    groups = bark_core.presets_by_language()
    order = [lang for lang in groups if lang != "Other"] + [lang for lang in groups if lang == "Other"]
    return [f"{lang}: {name}" for lang in order for name in groups[lang]]


def preset_name(option: str) -> str:
    """"English: v2/en_speaker_6" -> "v2/en_speaker_6"; a bare name passes through."""
    return option.split(": ", 1)[1] if ": " in option else option


class BarkVoicePreset(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        options = preset_options()
        return io.Schema(
            node_id="BarkVoicePreset",
            display_name="Bark Voice Preset",
            category=CATEGORY,
            description="One of Suno's built-in speakers (13 languages x 10, v1 and v2, plus announcer). "
                        "Read from the model set's voices/ folder or models/bark/voices/, else the hub.",
            inputs=[
                models_input(),
                io.Combo.Input("preset", options=options, default="English: v2/en_speaker_6",
                               tooltip="Speaker preset, grouped by language. v2 presets are Suno's newer set."),
            ],
            outputs=[Voice.Output(display_name="voice")],
        )

    @classmethod
    def execute(cls, models: BarkHandle, preset: str) -> io.NodeOutput:
        return io.NodeOutput(models.voice(preset_name(preset)))


class BarkVoiceFile(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkVoiceFile",
            display_name="Bark Voice File",
            category=CATEGORY,
            description="Loads a Bark voice .npz (semantic_prompt, coarse_prompt, fine_prompt) from "
                        "models/bark/voices/ or ComfyUI's input folder.",
            inputs=[
                io.Combo.Input("file", options=files.voice_file_choices(),
                               tooltip="Voice files: 'voices/...' are in models/bark/voices/, others in input/."),
            ],
            outputs=[Voice.Output(display_name="voice")],
        )

    @classmethod
    def fingerprint_inputs(cls, file: str) -> str:
        return files.file_fingerprint(file)

    @classmethod
    def execute(cls, file: str) -> io.NodeOutput:
        path = files.resolve_choice(file)
        return io.NodeOutput(load_voice_file(path, name=Path(file).stem))


class BarkVoiceFromTake(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkVoiceFromTake",
            display_name="Bark Voice From Take",
            category=CATEGORY,
            description="Turns a generation into a voice, to keep the same speaker for the next clip. "
                        "The fine codes carry their coarse and semantic parents in memory; connect them "
                        "explicitly when the fine codes were loaded from a file.",
            inputs=[
                Fine.Input("fine", tooltip="Fine codes of the take."),
                Semantic.Input("semantic", optional=True, tooltip="The take's semantic tokens (default: the "
                                                                  "fine codes' own ancestry)."),
                Coarse.Input("coarse", optional=True, tooltip="The take's coarse codes (default: the fine "
                                                              "codes' parent)."),
                io.String.Input("name", default="take", tooltip="Name recorded in the voice and its provenance."),
            ],
            outputs=[Voice.Output(display_name="voice")],
        )

    @classmethod
    def execute(cls, fine: FineCodes, name: str = "take", semantic: SemanticTokens | None = None,
                coarse: CoarseCodes | None = None) -> io.NodeOutput:
        coarse = coarse if coarse is not None else getattr(fine, "parent", None)
        semantic = semantic if semantic is not None else getattr(coarse, "parent", None)
        if coarse is None or semantic is None:
            raise ArtifactError("These fine codes do not carry their coarse/semantic parents (loaded from a file?). "
                                "Connect the take's semantic and coarse artifacts to this node too.")
        return io.NodeOutput(bark_core.voice_from_artifacts(semantic, coarse, fine, name=name.strip() or "take"))


RIGHT_CHOOSE = "(choose)"
RIGHT_OTHER = "other (write it in right_other)"
RIGHT_OPTIONS = (RIGHT_CHOOSE, *COMMON_RIGHTS, RIGHT_OTHER)


def rights_record(who: str, right: str, right_other: str, when: str, evidence: str, note: str) -> dict[str, str]:
    """The rights inputs as bark_core's rights dict; the combo's placeholders become clear errors."""
    if right == RIGHT_CHOOSE:
        raise RightsError("Choose the basis for using this voice in 'right' (e.g. 'own voice', 'written consent', "
                          "'licensed'), or 'other' and describe it in right_other. Public use of a cloned voice "
                          "needs the speaker's consent.")
    if right == RIGHT_OTHER:
        right = (right_other or "").strip()
        if not right:
            raise RightsError("right is 'other' but right_other is empty: describe the basis for using this voice "
                              "(e.g. 'contract 2024-17 with the voice actor').")
    data = {"who": who, "right": right, "when": when}
    if (evidence or "").strip():
        data["evidence"] = evidence
    if (note or "").strip():
        data["note"] = note
    return data


SEMANTIC_FROM_RECORDING = "from the recording (HuBERT + quantizer)"
SEMANTIC_NONE = "none (partial voice: coarse and fine only)"
QUANTIZER_DEFAULT = f"default (the model set's own, else {DEFAULT_QUANTIZER})"
QUANTIZERS_SUBDIR = "quantizers"


def quantizer_options() -> list[str]:
    """The model set's default, the official files (downloaded on first use), and any ``.pth`` in
    models/bark/quantizers/ (e.g. one trained on another language), as "quantizers/<name>"."""
    local = [f"{QUANTIZERS_SUBDIR}/{p.name}" for base in _comfy.bark_dirs()
             for p in sorted((base / QUANTIZERS_SUBDIR).glob("*.pth"))]
    return [QUANTIZER_DEFAULT, *KNOWN_QUANTIZERS, *dict.fromkeys(local)]


def quantizer_spec(option: str) -> str | None:
    """A quantizer choice as bark_core takes it: None (default), an official name, or a local file's path."""
    if option == QUANTIZER_DEFAULT or not option:
        return None
    if option.startswith(QUANTIZERS_SUBDIR + "/"):
        name = option.split("/", 1)[1]
        if "/" in name or "\\" in name or name.startswith("."):
            raise ParameterError(f"Quantizer {option!r} is not a plain file name in models/bark/{QUANTIZERS_SUBDIR}/; "
                                 "pick one from the list (press R to refresh it).")
        for base in _comfy.bark_dirs():
            path = base / QUANTIZERS_SUBDIR / name
            if path.is_file():
                return str(path)
        raise VoiceError(f"{name} is not in models/bark/{QUANTIZERS_SUBDIR}/ any more; press R to refresh the list.")
    return option


class BarkVoiceFromAudio(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkVoiceFromAudio",
            display_name="Bark Voice From Audio",
            category=CATEGORY,
            description="A voice from a recording (Load Audio), all three prompts: HuBERT base and a trained "
                        "quantizer give the semantic prompt, EnCodec the coarse and fine ones, from up to max_seconds "
                        "of whole phrases with the silence trimmed. The official quantizers are trained on English "
                        "speech. A rights record (who, on what basis, since when) is required and goes into every "
                        "label made with this voice.",
            inputs=[
                models_input(),
                io.Audio.Input("audio", tooltip="A clean recording of one speaker, 5-10 s of speech is best; any "
                                                "sample rate, stereo is mixed down."),
                io.String.Input("who", default="",
                                tooltip="Whose voice this is (or who holds the rights to it). Required."),
                io.Combo.Input("right", options=list(RIGHT_OPTIONS), default=RIGHT_CHOOSE,
                               tooltip="The basis for using the voice. 'other' takes the text in right_other."),
                io.String.Input("right_other", default="",
                                tooltip="The basis in your own words, when right is 'other'."),
                io.String.Input("when", default="",
                                tooltip="Date the consent or licence was given, YYYY-MM-DD. Required; not in the "
                                        "future."),
                io.String.Input("evidence", default="",
                                tooltip="Where the proof is kept (a signed form, a contract number). Recommended."),
                io.String.Input("note", default="", tooltip="Anything else, e.g. limits on use."),
                io.String.Input("name", default="reference", tooltip="Name of the voice, recorded in labels."),
                io.Float.Input("max_seconds", default=10.0, min=1.0, max=30.0, step=0.5,
                               tooltip="Longest prompt, in whole phrases (Bark's prompts are ~10 s; longer leaves "
                                       "less room for the new speech)."),
                io.Combo.Input("semantic_prompt", options=[SEMANTIC_FROM_RECORDING, SEMANTIC_NONE],
                               default=SEMANTIC_FROM_RECORDING,
                               tooltip="From the recording: the full clone (downloads HuBERT base, ~380 MB, and the "
                                       "quantizer once). None: a partial voice that carries timbre, not speaking "
                                       "style."),
                io.Combo.Input("quantizer", options=quantizer_options(), default=QUANTIZER_DEFAULT,
                               tooltip="Which quantizer turns HuBERT features into Bark's semantic tokens. The "
                                       "official ones are English-trained; put others (.pth) into "
                                       "models/bark/quantizers/ and press R."),
                io.Float.Input("start_s", default=0.0, min=0.0, max=1e6, step=0.1,
                               tooltip="Use the recording from this second on (0: its start)."),
                io.Float.Input("end_s", default=0.0, min=0.0, max=1e6, step=0.1,
                               tooltip="Use the recording up to this second (0: its end)."),
                Semantic.Input("semantic", optional=True,
                               tooltip="Optional semantic tokens of the same recording, made elsewhere; they "
                                       "replace the semantic prompt computed from the audio."),
            ],
            outputs=[Voice.Output(display_name="voice")],
        )

    @classmethod
    def execute(cls, models: BarkHandle, audio: dict, who: str = "", right: str = RIGHT_CHOOSE,
                right_other: str = "", when: str = "", evidence: str = "", note: str = "", name: str = "reference",
                max_seconds: float = 10.0, semantic_prompt: str = SEMANTIC_FROM_RECORDING,
                quantizer: str = QUANTIZER_DEFAULT, start_s: float = 0.0, end_s: float = 0.0,
                semantic: SemanticTokens | None = None) -> io.NodeOutput:
        rights = rights_record(who, right, right_other, when, evidence, note)  # before anything is read
        art = one_clip(audio, "Bark Voice From Audio")
        _comfy.check_interrupt()
        how = semantic if semantic is not None else ("none" if semantic_prompt == SEMANTIC_NONE else "hubert")
        with warnings.catch_warnings(record=True) as caught, models.hinted() as m:  # the codec encodes
            warnings.simplefilter("always", RecordingWarning)
            voice = voice_from_audio(m, art, rights=rights, semantic=how, quantizer=quantizer_spec(quantizer),
                                     start_s=start_s or None, end_s=end_s or None, max_seconds=max_seconds,
                                     name=name.strip() or "reference")
        for w in caught:
            if issubclass(w.category, RecordingWarning):
                _comfy.log.warning("Bark Voice From Audio: %s", w.message)
        sem = voice.source.get("semantic", {})
        _comfy.log.info("Bark: voice %r from %.2f s of audio, semantic prompt %s (rights: %s, %s)", voice.name,
                        voice.source.get("seconds", 0.0), (sem.get("quantizer") or {}).get("file", sem.get("method")),
                        rights["who"], rights["right"])
        return io.NodeOutput(voice)


VOICE_DESTINATIONS = ("models/bark/voices", "output")


class BarkSaveVoice(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkSaveVoice",
            display_name="Bark Save Voice",
            category=CATEGORY,
            description="Writes a voice as .npz (readable by Suno's own code too). In models/bark/voices/ it "
                        "shows up in Bark Voice File after a refresh.",
            is_output_node=True,
            inputs=[
                Voice.Input("voice", tooltip="The voice to save (a preset, a file or Voice From Take)."),
                io.String.Input("name", default="my_voice",
                                tooltip="File name without .npz; letters, digits, '-', '_' and '/' for sub-folders."),
                io.Combo.Input("destination", options=list(VOICE_DESTINATIONS), default=VOICE_DESTINATIONS[0],
                               tooltip="models/bark/voices: a fixed name, reused by Bark Voice File. output: "
                                       "ComfyUI's counter naming (name_00001_.voice.npz), never overwrites."),
                io.Boolean.Input("overwrite", default=False,
                                 tooltip="Replace an existing file of that name in models/bark/voices."),
            ],
            outputs=[io.String.Output(display_name="path")],
        )

    @classmethod
    def execute(cls, voice: bark_core.Voice, name: str = "my_voice", destination: str = VOICE_DESTINATIONS[0],
                overwrite: bool = False) -> io.NodeOutput:
        if not isinstance(voice, bark_core.Voice):
            raise VoiceError(f"Bark Save Voice needs a BARK_VOICE, got {type(voice).__name__}.")
        clean = name.strip().strip("/")
        if not clean or not re.fullmatch(r"[\w\-./]+", clean) or ".." in clean.split("/"):
            raise ParameterError(f"Voice name {name!r} is not a plain file name; use letters, digits, '-', '_', '/'.")
        if destination == "output":
            path = _comfy.save_path(clean, "voice.npz")
            ui_entry = _comfy.output_ui_entry(path)
        else:
            base = _comfy.bark_dirs()[0] / _comfy.VOICES_SUBDIR
            path = base / f"{clean.removesuffix('.npz')}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            ui_entry = None
        path = voice.save(path, overwrite=overwrite)
        _comfy.log.info("Bark: saved voice %s to %s", voice.label, path)
        ui = {"text": [str(path)]}
        if ui_entry is not None:
            ui["bark_files"] = [ui_entry]
        return io.NodeOutput(str(path), ui=ui)


NODES = [BarkVoicePreset, BarkVoiceFile, BarkVoiceFromTake, BarkVoiceFromAudio, BarkSaveVoice]
