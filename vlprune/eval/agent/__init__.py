"""Multi-step GUI-agent evaluation: episode records, step prompts, action conventions and parsers.

Records (:mod:`.records`): :class:`Action` (normalised points of the original screenshot, content
scroll directions), :class:`Step`, :class:`Episode`. Prompts (:mod:`.prompt`): :class:`PromptConfig`
(K history actions, N history screenshots), :class:`TaskSpec`, :func:`build_messages`,
:func:`step_views`. Conventions (:mod:`.convention`): :func:`format_action` / :func:`parse_action` per
Qwen-VL family. Data: :func:`load_trajectory` / :func:`load_trajectories` (recorded browsing episodes;
:func:`trajectory_spec` prompts them),
:mod:`.tfrecord` (TFRecord + ``tf.train.Example`` without TensorFlow). The benchmark datasets built on
these live in :mod:`vlprune.eval.datasets` (``aitw``, ``mind2web``, ``gui-odyssey``, ``androidcontrol``).
"""

from vlprune.eval.agent.convention import CONVENTIONS, action_arguments, format_action, parse_action
from vlprune.eval.agent.prompt import PromptConfig, StepView, TaskSpec, build_messages, step_views, system_prompt
from vlprune.eval.agent.records import (
    ACTION_TYPES,
    DIRECTIONS,
    Action,
    Episode,
    RecordError,
    Step,
    swipe_direction,
)
from vlprune.eval.agent.trajectories import TRAJECTORY_SPECS, load_trajectories, load_trajectory, trajectory_spec

__all__ = [
    "ACTION_TYPES", "CONVENTIONS", "DIRECTIONS", "Action", "Episode", "PromptConfig", "RecordError", "Step",
    "StepView", "TaskSpec", "action_arguments", "build_messages", "format_action", "load_trajectories",
    "load_trajectory", "parse_action", "step_views", "swipe_direction", "system_prompt", "TRAJECTORY_SPECS",
    "trajectory_spec",
]
