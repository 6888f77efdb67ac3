"""The generation options that `generate`, `compare` and `batch` share, declared once, and flag parsing.

`GenFlags` is the one declaration: a dataclass whose fields carry their Typer options. `@gen_options`
adds those fields to a command's parameters and calls the command with one `flags: GenFlags`, so a
command lists only its own options:

    @app.command()
    @friendly
    @gen_options
    def generate(flags: GenFlags, classes: Optional[List[int]] = ClassOpt, ...): ...

Also here: flag text -> the values the API takes (`parse_cfg`) and the SSG setting of a run
(`build_ssg`). SSG's own text forms (`--ssg-beta 0.5 | 0,0,0.2,... | linear:1.0:0.2`, `--ssg-scales
2-9`) are parsed by `ssgen.SSG` itself, as the Python API and YAML files write them too: one grammar.
Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable, Optional

import typer

from ..errors import ConfigError

SSG_PANEL = "SSG"


def _opt(*args: Any, **kwargs: Any) -> Any:
    """A GenFlags field declared by its Typer option (`typer.Option(...)`'s arguments)."""
    return dataclasses.field(metadata={"option": typer.Option(*args, **kwargs)})


@dataclass
class GenFlags:
    """The generation options shared by generate, compare and batch, as typed (None: not given, the
    model config's default applies). Built once per command by `@gen_options`."""

    model: str = _opt(..., "--model", "-m", help="A registered model name (see `ssgen models list`) or a YAML config.")
    cfg: Optional[str] = _opt(None, "--cfg",
                              help="Classifier-free guidance: a number, or one value per scale (a,b,...).")
    top_k: Optional[int] = _opt(None, "--top-k", help="Top-k filtering (0 = off).")
    top_p: Optional[float] = _opt(None, "--top-p", help="Top-p (nucleus) filtering (0 = off).")
    more_smooth: Optional[bool] = _opt(None, "--more-smooth/--no-more-smooth",
                                       help="Gumbel-smoothed token embeddings (VAR, HART).")
    ssg_scales: Optional[str] = _opt(None, "--ssg-scales", rich_help_panel=SSG_PANEL,
                                     help="Inclusive 0-based scale range, e.g. 2-9 (negatives count from the end).")
    ssg_prior: Optional[str] = _opt(None, "--ssg-prior", rich_help_panel=SSG_PANEL,
                                    help="dse (default), or an ablation prior: bilinear, bicubic, nearest, area.")
    dse_interp: Optional[str] = _opt(None, "--dse-interp", rich_help_panel=SSG_PANEL,
                                     help="DSE interpolation: bilinear (default) or bicubic.")
    dse_no_rescale: bool = _opt(False, "--dse-no-rescale", rich_help_panel=SSG_PANEL,
                                help="Do not rescale the coarse DCT band.")
    device: str = _opt("auto", "--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps.")
    dtype: str = _opt("auto", "--dtype", help="auto, float32, bfloat16, float16. auto: bf16 on GPUs and on AMX CPUs, "
                      "float32 on other CPUs (bf16 is slower there).")
    offline: bool = _opt(False, "--offline",
                         help="Use only weights already in the local cache (like HF_HUB_OFFLINE=1).")
    compile: bool = _opt(False, "--compile", help="Opt-in: torch.compile the per-scale transformer step. The first "
                         "image pays the compile time (one compile per scale); tokens equal eager ones up to float "
                         "rounding.")
    cuda_graphs: bool = _opt(False, "--cuda-graphs", help="Opt-in, CUDA only: --compile plus CUDA-graph replay of "
                             "every scale's step (torch.compile mode reduce-overhead). The first images pay the "
                             "compile time (one compile per scale); tokens equal eager ones up to float rounding.")

    def compile_mode(self) -> bool | str:
        """What `ssgen.load(compile=...)` takes: False, "default" (--compile) or "cuda-graphs" (--cuda-graphs)."""
        return "cuda-graphs" if self.cuda_graphs else ("default" if self.compile else False)

    family: dict[str, Any] = dataclasses.field(default_factory=dict)  # the family flags given (family_flags())

    def options(self) -> dict[str, Any]:
        """The sampling and family options that were given, as `Pipeline.generate` takes them."""
        d = dict(cfg=parse_cfg(self.cfg), top_k=self.top_k, top_p=self.top_p, more_smooth=self.more_smooth)
        for flag in family_flags().values():
            value = self.family.get(flag.name)
            d[flag.name] = parse_cfg(value, flag.decl) if flag.kind == "per-scale" else value
        return {k: v for k, v in d.items() if v is not None}  # the family validates them


def family_flags() -> dict[str, Any]:
    """Every registered family's own flags (`FamilySpec.flags`), once per option name, in registry order."""
    from ..backends import families

    out: dict[str, Any] = {}
    for spec in families().values():
        for flag in spec.flags:
            first = out.setdefault(flag.name, flag)
            if first is not flag and flag.help not in first.help:  # two families, one flag: both helps shown
                out[flag.name] = dataclasses.replace(first, help=f"{first.help} {flag.help}")
    return out


def _panel(flag: Any) -> str:
    """The help panel of a family flag: the condition kind and the families that take it."""
    from ..backends import families

    specs = [s for s in families().values() if any(f.name == flag.name for f in s.flags)]
    titles = [s.title for s in families().values() if s.condition == specs[0].condition]
    kind = "Text-to-image" if specs[0].condition == "text" else "Class-conditional"
    return f"{kind} ({', '.join(titles)})"


FLAG_TYPES = {"bool": Optional[bool], "int": Optional[int], "number": Optional[float]}  # Flag.kind -> Typer's type


def _family_parameters() -> list[inspect.Parameter]:
    """Typer parameters for the family flags: `--name` (text, per-scale, a whole number or a number) or
    `--name/--no-name` (bool)."""
    params = []
    for flag in family_flags().values():
        kind = FLAG_TYPES.get(flag.kind, Optional[str])
        opt = typer.Option(None, *flag.decl.split(" "), rich_help_panel=_panel(flag), help=flag.help)
        params.append(inspect.Parameter(flag.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=kind))
    return params


def gen_options(command: Callable) -> Callable:
    """Give a Typer command the shared generation options: Typer sees GenFlags' fields next to the
    command's own parameters (--model first), and the command gets them as its first argument, a GenFlags."""
    hints = typing.get_type_hints(GenFlags)
    shared = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.metadata["option"],
                                annotation=hints[f.name])
              for f in dataclasses.fields(GenFlags) if "option" in f.metadata]
    fam = _family_parameters()
    first, *rest = inspect.signature(command, eval_str=True).parameters.values()
    if first.name != "flags":
        raise TypeError(f"{command.__name__}: a @gen_options command takes `flags: GenFlags` first")
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in rest]

    @functools.wraps(command)
    def wrapper(**kwargs):
        flags = GenFlags(**{p.name: kwargs.pop(p.name) for p in shared},
                         family={p.name: kwargs.pop(p.name) for p in fam})
        return command(flags, **kwargs)

    params = shared[:1] + own + shared[1:] + fam  # what Typer reads: --model, the command's own, the shared rest
    wrapper.__signature__ = inspect.Signature(params)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


# options that two of the three commands share (generate and batch: --ssg, --ssg-beta; compare takes
# --ssg-beta once per column instead)
SsgOpt = typer.Option(None, "--ssg/--no-ssg", rich_help_panel=SSG_PANEL,
                      help="Turn SSG on/off (default: the model config's setting).")
BetaOpt = typer.Option(None, "--ssg-beta", rich_help_panel=SSG_PANEL,
                       help="SSG strength: 0.5, a per-scale list 0,0,0.2,..., or linear:START:END.")


def parse_cfg(text: str | None, flag: str = "--cfg") -> float | list[float] | None:
    """`4.0` -> 4.0, `1,2,3` -> [1.0, 2.0, 3.0] (one value per scale); None stays None."""
    if text is None:
        return None
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"malformed {flag} {text!r}; use a number (4.0) or one value per scale (0,1,2,...)") from None
    return vals[0] if len(vals) == 1 else vals


def build_ssg(config, flags: GenFlags, on: bool | None = None, beta: str | None = None):
    """A run's SSG setting: the model config's default with the SSG flags on top. Returns an SSG, or False
    for off (`--no-ssg`, or a model without an SSG default and no SSG flag). Raises on a bad value."""
    from ..settings import SSG

    if on is False:
        return False
    given = {"beta": beta, "scales": flags.ssg_scales, "prior": flags.ssg_prior, "interp": flags.dse_interp,
             "rescale": False if flags.dse_no_rescale else None}
    given = {k: v for k, v in given.items() if v is not None}
    if on is None and config.ssg is None and not given:
        return False
    return dataclasses.replace(config.ssg or SSG(), **given)  # SSG parses the text forms and checks them
