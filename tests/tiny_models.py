"""Tiny random-weight speech encoder-decoders of the families simulst runs besides Whisper, saved as a user's
model directory would be (config, weights, sentencepiece tokenizer trained here, feature extractor)."""

from __future__ import annotations

from pathlib import Path

TEXT = [
    "the quick brown fox jumps over the lazy dog", "guten tag liebe leute", "hello world this is a test",
    "speech translation in real time", "die katze sitzt auf der matte", "le chat est sur le tapis",
]
LANGUAGES = ["__eng__", "__deu__", "__fra__"]


def _sentencepiece(folder: Path, name: str, **ids) -> Path:
    import sentencepiece

    text = folder / "text.txt"
    text.write_text("\n".join(TEXT * 20), encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(folder / name), vocab_size=40, model_type="unigram", character_coverage=1.0, minloglevel=2, **ids
    )
    return folder / f"{name}.model"


def speech2text(folder: Path) -> Path:
    """A bilingual Speech2Text model (as the MuST-C en-de ones: no language token)."""
    import json

    import sentencepiece
    import torch
    from transformers import Speech2TextConfig, Speech2TextFeatureExtractor, Speech2TextForConditionalGeneration, Speech2TextTokenizer

    work = folder / "s2t-build"
    work.mkdir(parents=True, exist_ok=True)
    model_file = _sentencepiece(work, "s2t", pad_id=1, unk_id=3, bos_id=0, eos_id=2)
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    (work / "vocab.json").write_text(json.dumps({pieces.id_to_piece(i): i for i in range(pieces.get_piece_size())}))
    tokenizer = Speech2TextTokenizer(str(work / "vocab.json"), str(model_file))
    torch.manual_seed(0)
    config = Speech2TextConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, conv_channels=32, max_source_positions=1500, max_target_positions=256,
    )
    out = folder / "s2t"
    Speech2TextForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    Speech2TextFeatureExtractor().save_pretrained(out)
    return out


def seamless(folder: Path) -> Path:
    """A SeamlessM4T v2 speech-to-text model with three target languages."""
    import torch
    from transformers import SeamlessM4TFeatureExtractor, SeamlessM4TTokenizer, SeamlessM4TTokenizerFast, SeamlessM4Tv2Config, SeamlessM4Tv2ForSpeechToText

    work = folder / "seamless-build"
    work.mkdir(parents=True, exist_ok=True)
    SeamlessM4TTokenizer(str(_sentencepiece(work, "sm", pad_id=0, unk_id=1, bos_id=2, eos_id=3)), additional_special_tokens=LANGUAGES).save_pretrained(work)
    tokenizer = SeamlessM4TTokenizerFast.from_pretrained(work)  # the ids the saved tokenizer.json will give
    ids = tokenizer.convert_tokens_to_ids(LANGUAGES)
    torch.manual_seed(0)
    config = SeamlessM4Tv2Config(
        vocab_size=max(len(tokenizer), max(ids) + 1), hidden_size=32, speech_encoder_layers=1, speech_encoder_attention_heads=2,
        speech_encoder_intermediate_size=64, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, t2u_vocab_size=16, t2u_encoder_layers=1, t2u_decoder_layers=1, t2u_encoder_attention_heads=2,
        t2u_decoder_attention_heads=2, t2u_encoder_ffn_dim=32, t2u_decoder_ffn_dim=32, unit_embed_dim=16, upsample_initial_channel=16,
        unit_hifi_gan_vocab_size=16, vocoder_num_spkrs=1, vocoder_num_langs=1, spkr_embed_dim=8, lang_embed_dim=8, max_position_embeddings=256,
    )
    model = SeamlessM4Tv2ForSpeechToText(config)
    model.generation_config._from_model_config = False
    model.generation_config.text_decoder_lang_to_code_id = {code.strip("_"): i for code, i in zip(LANGUAGES, ids)}
    out = folder / "seamless"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    SeamlessM4TFeatureExtractor().save_pretrained(out)
    return out


def foreign(folder: Path) -> Path:
    """A model directory of an architecture that is no speech encoder-decoder (a tiny BERT)."""
    from transformers import BertConfig, BertModel

    out = folder / "bert"
    BertModel(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)).save_pretrained(out)
    return out
