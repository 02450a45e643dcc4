"""One declaration per setting: a dataclass field carries a setting's flag, help, default, choices and
whether it defines the run. The scripts' parsers, the YAML recipes (``--config``), the manifests'
fingerprints, experiment.py's steps and the commands that rerun a step are all read off these fields.

    @dataclass(kw_only=True)
    class ProbeConfig(DataSettings, GenerationSettings, OutputSettings):
        k: int = setting(100, "samples per question", group="probing")
        chunk: int = setting(64, "questions per checkpoint", operational=True)

    config = parse(ProbeConfig, argv, __doc__)   # argparse underneath: flags --k, --chunk, --config
    to_argv(config)                              # ["--k", "20"]: the flags that differ from the defaults
    fingerprint_settings(config)                 # what defines the run's outputs (operational ones left out)

A runner's setting may hold another stage's settings as a mapping (``StageSettings``): experiment.py's
``train_args`` is ``{"lr": 3e-5}`` whether it came as ``--train-args "--lr 3e-5"``, ``--train.lr 3e-5`` or
``train: {lr: 3e-5}`` in a recipe, checked against TrainConfig once, where it came in.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache, partial
from pathlib import Path
from typing import Any, TypeVar

from .errors import AliceError

_UNSET = object()
Config = TypeVar("Config")


def setting(default: Any = None, help: str = "", *, flag: str | None = None, choices: Sequence | None = None,
            group: str | None = None, operational: bool = False, later_default: Any = _UNSET,
            metavar: str | None = None, negatable: bool = False, required: bool = False,
            dest_flag: str | None = None, parse_type: Any = None, stage: StageSettings | None = None) -> Any:
    """A dataclass field declaring one setting.

    flag: the option string (default ``--name-with-dashes``); dest_flag: an on/off flag whose
    presence stores False (``--no-cascade`` for ``cascade``); choices: the allowed values; group: the
    ``--help`` section; operational: changes how a run goes, not what it produces (left out of the
    fingerprint); later_default: a setting added after outputs existed, left out of the fingerprint
    at this value so those outputs still resume; negatable: an on/off flag with a --no- form;
    parse_type: how a flag's text becomes a value (default: from the annotation); stage: the setting holds
    another stage's settings (``stage_settings``)."""
    meta = {"help": help, "flag": flag, "choices": list(choices) if choices is not None else None, "group": group,
            "operational": operational, "metavar": metavar, "negatable": negatable, "required": required,
            "dest_flag": dest_flag, "parse_type": parse_type, "stage": stage}
    if later_default is not _UNSET:
        meta["later_default"] = later_default
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def like(base: type, name: str, default: Any = _UNSET, **changes: Any) -> Any:
    """``base``'s setting ``name`` again, with another default or help for a subclass."""
    old = field_map(base)[name]
    if default is _UNSET:
        default = old.default if old.default is not dataclasses.MISSING else old.default_factory()
    return setting(default, **{**old.metadata, **changes})


@dataclasses.dataclass(kw_only=True)
class Settings:
    """Every stage config: ``--config recipe.yaml`` (which flags override) is itself recorded."""

    config: str | None = setting(None, "settings from a YAML recipe (configs/recipes/); flags override them",
                                 metavar="RECIPE.yaml", operational=True)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            allowed = f.metadata.get("choices")
            value = getattr(self, f.name)
            if f.metadata.get("stage") is not None and value:  # another stage's settings: checked by that stage
                setattr(self, f.name, f.metadata["stage"].values(value, flag_of(f)))
            values = value if isinstance(value, list) else [value]  # a list setting: each of its values
            if allowed is not None and value is not None and any(v not in allowed for v in values):
                raise AliceError(f"{flag_of(f)} {value!r} is not one of {allowed}")


def field_map(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("dest_flag") or f.metadata.get("flag") or "--" + f.name.replace("_", "-")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(the value type, whether it is a list) of an annotation such as ``int | None`` or ``list[str]``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


# ----------------------------------------------------------------------------- another stage's settings


@dataclasses.dataclass(frozen=True)
class StageSettings:
    """What a runner's setting such as experiment.py's ``train_args`` holds: settings of one stage as a
    mapping (setting name -> value), checked against that stage's config.

    name: the stage in dotted flags and recipes (``--train.lr 3e-5``, ``train: {lr: 3e-5}``); script: its
    script, for messages; config: its config class (imported when first needed); refused: the settings
    a runner cannot give that stage on its own, each with why (``{flags}`` in it: theirs)."""

    name: str
    script: str
    config: Callable[[], type]
    refused: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def values(self, given: str | Mapping[str, Any], what: str) -> dict[str, Any]:
        """The settings ``given`` sets (the script's flags as text, or a mapping), checked and typed; an
        unknown setting, a bad value or a refused setting is one line naming ``what``."""
        cls = self.config()
        by_name = field_map(cls)
        if isinstance(given, str):
            values = overrides(cls, given, what, self.script)
        elif isinstance(given, Mapping):
            values = {}
            for key, value in given.items():
                name = str(key).replace("-", "_")
                if name not in by_name or name == "config":
                    raise AliceError(f"{what}: {key!r} is not a setting of {self.script}")
                values[name] = _typed(cls, by_name[name], value, f"{what}: {key}")
        else:
            raise AliceError(f"{what}: {given!r} is neither {self.script}'s flags nor a mapping of its settings")
        refused = [name for name in values if name in self.refused]
        if refused:
            why = self.refused[refused[0]]
            flags = ", ".join(flag_of(by_name[name]) for name in refused if self.refused[name] == why)
            raise AliceError(f"{what} {flags}: {why.format(flags=flags)}")
        return values

    def flags(self, values: Mapping[str, Any]) -> list[str]:
        """``values`` as the script's flags: how a command line (a step's rerun command) writes them."""
        by_name = field_map(self.config())
        return [arg for name, value in values.items() for arg in _flag_args(by_name[name], value)]


def _typed(cls: type, f: dataclasses.Field, value: Any, what: str) -> Any:
    """A recipe's ``value`` for ``cls``'s setting ``f``, as the setting's type (YAML reads 1e-5 as a string)."""
    value_type, is_list = _base_type(_hints(cls)[f.name])
    convert = f.metadata.get("parse_type") or value_type

    def one(item: Any) -> Any:
        if item is None and not is_list and f.default is None:
            return None
        if (value_type is bool) == isinstance(item, bool) and not (value_type is int and isinstance(item, float)):
            if value_type is bool or (isinstance(item, value_type) and not isinstance(item, str)):
                return item
            try:
                return convert(item)
            except (TypeError, ValueError):
                pass
        raise AliceError(f"{what}: {item!r} is not a valid {getattr(value_type, '__name__', value_type)}")

    typed = [one(v) for v in (value if isinstance(value, list) else [value])] if is_list else one(value)
    allowed = f.metadata.get("choices")
    if allowed is not None and typed is not None and any(v not in allowed for v in
                                                         (typed if is_list else [typed])):
        raise AliceError(f"{what}: {value!r} is not one of {allowed}")
    return typed


class _MergeStageSettings(argparse.Action):
    """A stage-settings flag: its text is read once (``type``), and merged key by key over what a
    recipe or an earlier flag gave."""

    def __init__(self, *args, stage: StageSettings, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stage = stage

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest, None) or {}), **values})


_NEGATIVE_NUMBER = re.compile(r"-\.?\d")


# ----------------------------------------------------------------------------- parsing


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default once: appended as "(default: X)" unless the help already says
    what the default is; unset (None) and off (False) defaults are not shown."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text.lower() or "%(default)" in text
                or action.default is None or action.default is False or action.default is argparse.SUPPRESS
                or isinstance(action, argparse._StoreFalseAction)):  # --no-X: off unless given, nothing to show
            return text
        return f"{text} (default: %(default)s)".strip()


class Parser(argparse.ArgumentParser):
    """argparse with ``--config recipe.yaml``: the recipe's keys are the settings' names
    (``max_new_tokens`` for --max-new-tokens) and set their values; flags given on the command line
    override the recipe. A key the script has no setting for is refused, like an unknown flag.

    Another stage's settings (``stage_settings``) come three ways, merged key by key in this order: the
    recipe's ``train: {lr: 3e-5}`` (or ``train_args``), ``--train-args "--lr 3e-5"``, ``--train.lr 3e-5``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--help-all", action="help", help="show every setting described, the shared ones too")
        self.add_argument("--config", metavar="RECIPE.yaml",
                          help="settings from a YAML recipe (configs/recipes/); flags override them")

    def parse_known_args(self, args=None, namespace=None):
        args = self._dotted(sys.argv[1:] if args is None else [str(a) for a in args])
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--config")
        recipe = pre.parse_known_args(args)[0].config
        if recipe:  # a namespace's values come before the defaults; the command line still wins
            namespace = namespace or argparse.Namespace()
            for key, value in self._recipe_values(recipe).items():
                setattr(namespace, key, value)
        return super().parse_known_args(args, namespace)

    def _stage_actions(self) -> dict[str, _MergeStageSettings]:
        return {a.stage.name: a for a in self._actions if isinstance(a, _MergeStageSettings)}

    def _dotted(self, args: list[str]) -> list[str]:
        """``--train.lr 3e-5`` (one setting of a stage, with its values) as ``--train-args=--lr 3e-5``."""
        stages = self._stage_actions()
        out: list[str] = []
        i = 0
        while i < len(args):
            arg, i = args[i], i + 1
            head, _, rest = arg.partition(".")
            if not (arg.startswith("--") and rest and head[2:] in stages):
                out.append(arg)
                continue
            name, equals, value = rest.partition("=")
            fragment = ["--" + name.replace("_", "-") + equals + value]
            while not equals and i < len(args) and (not args[i].startswith("-") or _NEGATIVE_NUMBER.match(args[i])):
                fragment.append(args[i])
                i += 1
            out.append(f"{stages[head[2:]].option_strings[0]}={shlex.join(fragment)}")
        return out

    def _recipe_values(self, recipe: str) -> dict:
        import yaml

        try:
            values = yaml.safe_load(Path(recipe).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            self.error(f"--config {recipe}: {err}")
        if not isinstance(values, dict):
            self.error(f"--config {recipe}: expected a mapping of settings")
        actions = {a.dest: a for a in self._actions if a.option_strings and a.dest not in ("help", "config")}
        stages = self._stage_actions()
        out = {}
        for key, value in values.items():
            action = actions.get(str(key).replace("-", "_")) or stages.get(str(key))
            if action is None:
                self.error(f"--config {recipe}: {key!r} is not a setting of this script")
            if isinstance(action, _MergeStageSettings):  # train: {lr: 3e-5}, or train_args: "--lr 3e-5"
                out[action.dest] = {**out.get(action.dest, {}), **action.stage.values(value, f"--config {recipe}: {key}")}
                continue
            if isinstance(value, str) and action.type is not None:
                value = action.type(value)  # YAML reads 1e-5 as a string
            if action.nargs == "+" and not isinstance(value, list):
                value = [value]  # a list setting given one value
            if action.choices is not None and any(v not in action.choices for v in
                                                  (value if isinstance(value, list) else [value])):
                self.error(f"--config {recipe}: {key}: {value!r} is not one of {list(action.choices)}")
            action.required = False  # the recipe gives it
            out[action.dest] = value
        return out


# Setting groups every generating script shares: ``--help`` lists their flags in one line (``--help-all``
# describes each), so a script's own settings are not lost among them.
SHARED_HELP_GROUPS = ("generation",)


def add_settings(parser: argparse.ArgumentParser, cls: type, suppress_defaults: bool = False,
                 full_help: bool = True) -> None:
    """One flag per field of ``cls`` (``config`` excepted: the parser has it), in ``--help`` sections
    by the fields' groups, "output" last; with ``full_help=False`` a shared group (SHARED_HELP_GROUPS)
    is one line naming its flags."""
    hints = _hints(cls)
    groups: dict[str | None, Any] = {}
    fields = [f for f in dataclasses.fields(cls) if f.name != "config"]
    fields.sort(key=lambda f: f.metadata.get("group") == "output")
    for f in fields:
        meta = f.metadata
        name = meta.get("group")
        short = not full_help and name in SHARED_HELP_GROUPS
        if name not in groups:
            if name is None:
                groups[name] = parser
            elif short:
                import textwrap

                flags = " ".join(flag_of(g) for g in fields if g.metadata.get("group") == name)
                groups[name] = parser.add_argument_group(
                    f"{name} (shared by every generating script; --help-all describes each)",
                    textwrap.fill(flags, 78, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False))
            else:
                groups[name] = parser.add_argument_group(name)
        target = groups[name]
        value_type, is_list = _base_type(hints[f.name])
        default = argparse.SUPPRESS if suppress_defaults else (
            f.default if f.default is not dataclasses.MISSING else f.default_factory())
        kwargs: dict[str, Any] = {"dest": f.name, "help": argparse.SUPPRESS if short else meta.get("help") or None,
                                  "default": default}
        if meta.get("stage") is not None:
            kwargs.update(action=_MergeStageSettings, stage=meta["stage"], metavar='"FLAGS"',
                          type=partial(meta["stage"].values, what=flag_of(f)))
        elif value_type is bool and meta.get("dest_flag"):
            kwargs["action"] = "store_false"
        elif value_type is bool and meta.get("negatable"):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif value_type is bool:
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = meta.get("parse_type") or value_type
            if is_list:
                kwargs["nargs"] = "+"
            if meta.get("choices") is not None:
                kwargs["choices"] = meta["choices"]
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
            if meta.get("required") and not suppress_defaults:
                kwargs["required"] = True
        target.add_argument(flag_of(f), **kwargs)


def build_parser(cls: type, doc: str | None, full_help: bool | None = None) -> Parser:
    """A script's parser; ``--help`` is short on the shared settings unless ``--help-all`` is asked for."""
    if full_help is None:
        full_help = "--help-all" in sys.argv
    parser = Parser(description=doc)
    add_settings(parser, cls, full_help=full_help)
    return parser


def from_namespace(cls: type[Config], namespace: argparse.Namespace) -> Config:
    names = field_map(cls)
    return cls(**{k: v for k, v in vars(namespace).items() if k in names})


def parse(cls: type[Config], argv: Sequence[str] | None, doc: str | None = None) -> Config:
    """A script's settings: flags, over a ``--config`` recipe, over the declared defaults."""
    argv = None if argv is None else [str(a) for a in argv]
    parser = build_parser(cls, doc, full_help="--help-all" in (sys.argv[1:] if argv is None else argv))
    namespace = parser.parse_args(argv)
    try:
        return from_namespace(cls, namespace)
    except AliceError as err:
        parser.error(str(err))


def overrides(cls: type, text: str | Sequence[str] | None, what: str, script: str = "that stage") -> dict[str, Any]:
    """The settings a fragment of flags (``"--lora --max-steps 4"``) gives, checked by ``cls``'s own
    parser: what ``--train-args "--lora --max-steps 4"`` and the like give (``StageSettings.values``)."""
    argv = shlex.split(text) if isinstance(text, str) else list(text or [])
    if not argv:
        return {}
    parser = argparse.ArgumentParser(prog=what, add_help=False, exit_on_error=False, allow_abbrev=False)
    add_settings(parser, cls, suppress_defaults=True)
    try:
        namespace, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as err:
        raise AliceError(f"{what} {shlex.join(argv)}: {err}") from None
    if unknown:
        raise AliceError(f"{what}: {shlex.join(unknown)} is not a setting of {script}")
    return vars(namespace)


# ----------------------------------------------------------------------------- reading settings back


def _flag_args(f: dataclasses.Field, value: Any) -> list[str]:
    flag = flag_of(f)
    if isinstance(value, bool):
        if f.metadata.get("dest_flag"):
            return [flag] if not value else []  # the flag stores False
        if f.metadata.get("negatable"):
            return [flag if value else "--no-" + flag[2:]]
        return [flag] if value else []
    if isinstance(value, list):
        return [flag, *map(str, value)]
    if isinstance(value, dict):  # another stage's settings: one argument, that script's flags
        if not value:
            return []
        text = shlex.join(f.metadata["stage"].flags(value))
        # argparse would read a lone "--keep-singletons" after the flag as a flag of its own, not its value
        return [f"{flag}={text}"] if text.startswith("-") and " " not in text else [flag, text]
    return [] if value is None else [flag, str(value)]


def to_argv(config: Any) -> list[str]:
    """The flags that rebuild ``config`` from the defaults: the command that reruns a step."""
    out: list[str] = []
    for f in dataclasses.fields(config):
        if f.name == "config":
            continue
        value = getattr(config, f.name)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if value != default or f.metadata.get("required"):
            out += _flag_args(f, value)
    return out


def fingerprint_settings(config: Any, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """The settings that define what a run produces: every field but the operational ones, and a
    later-added setting only where it differs from its default. Another stage's settings count as that
    script's flags, the text they were recorded as before they were a mapping (those runs still resume)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.metadata.get("operational") or f.name in exclude:
            continue
        if "later_default" in f.metadata and value == f.metadata["later_default"]:
            continue
        out[f.name] = shlex.join(f.metadata["stage"].flags(value)) if f.metadata.get("stage") else value
    return out


def settings_dict(config: Any) -> dict[str, Any]:
    """Every setting with its value (manifests record it as the run's arguments)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set inside the block, as it was after it."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
