"""Head files, one format for every trained part (policy heads, NAR heads): ``NAME.pt`` (a torch state dict)
beside ``NAME.json`` (its card: what it is for, the model it reads, its shape, the data, the seed, the training
report). A head is named by a shipped name (a card in the owner's ``heads`` folder), a card's path, the ``.pt``
beside it, or a folder holding one card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from simulst.errors import OptionError


@dataclass(frozen=True)
class Card:
    """A head's card, read; its weights lie beside it."""

    path: Path
    data: dict
    what: str = "head"

    @property
    def name(self) -> str:
        return self.path.stem

    def load_into(self, net):
        """``net`` with the weights of this head (stored in any float type), in eval mode."""
        import torch

        weights = self.path.with_suffix(".pt")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net.load_state_dict({k: v.float() for k, v in state.items()})
        except (OSError, RuntimeError) as exc:
            raise OptionError(f"cannot load {self.what} weights {weights}: {exc}") from exc
        return net.eval()


def resolve(name: str, shipped: Path, what: str = "head") -> Path:
    """The card of a head named by a shipped name, a card or weights path, or a folder holding one card."""
    path = Path(name)
    if path.is_dir():
        cards = sorted(path.glob("*.json"))
        if len(cards) != 1:
            raise OptionError(f"{path} should hold one {what} card (NAME.json beside NAME.pt), found {len(cards)}")
        return cards[0]
    if path.suffix in (".json", ".pt") and path.with_suffix(".json").exists():
        return path.with_suffix(".json")
    if (shipped / f"{name}.json").exists():
        return shipped / f"{name}.json"
    known = ", ".join(sorted(p.stem for p in shipped.glob("*.json"))) or "none"
    raise OptionError(f"no {what} {name!r}: give a shipped name ({known}) or the path of a NAME.json card beside NAME.pt")


def load_card(name: str, shipped: Path, what: str, expect: Mapping[str, Any]) -> Card:
    """A head's card, refused when one of its ``expect`` entries differs (another policy, feature set, format)."""
    path = resolve(name, shipped, what)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OptionError(f"cannot read the {what} card {path}: {exc}") from exc
    for key, wanted in expect.items():
        if data.get(key) != wanted:
            raise OptionError(f"{what} {path.stem} has {key} {data.get(key)!r}, not {wanted!r}: use a {what} made for it, or retrain")
    return Card(path, data, what)


def save(net, card: dict, path: str | Path, half: bool = False) -> Path:
    """Write ``PATH.pt`` (float16 weights with ``half``) and its card ``PATH.json``; returns the card's path."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half else v).cpu() for k, v in net.state_dict().items()}
    torch.save(state, path.with_suffix(".pt"))
    path.with_suffix(".json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path.with_suffix(".json")
