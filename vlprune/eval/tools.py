"""Function-calling system prompts of the Qwen2.5-VL / Qwen3-VL GUI tools (``computer_use``, ``mobile_use``).

The system text has the shape that the Qwen2.5-VL and Qwen3-VL chat templates render for
``apply_chat_template(..., tools=[...])``: the system prompt, a ``# Tools`` section listing each
function's JSON schema inside ``<tools></tools>``, and the instruction to answer with
``<tool_call>{"name": ..., "arguments": ...}</tool_call>``. It is written into the system message
because the dataset interface hands the runner messages only.

The tool descriptions carry what the models were tuned on: the tool name, the action names, a
``coordinate`` argument and "The screen's resolution is WxH." -- the canvas the model saw in pixels
for Qwen2.5-VL (ScreenSpot-Pro ``models/qwen2_5vl.py``; Qwen2.5-VL computer-use cookbook), and
1000x1000 for the 0-1000 grid of Qwen3-VL / Qwen3.5 (Qwen3-VL cookbook).
"""

from __future__ import annotations

import json

DEFAULT_SYSTEM = "You are a helpful assistant."

#: tool name -> (what it drives, its click action, its action names)
GUI_TOOLS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "computer_use": (
        "Use a mouse and keyboard to operate a desktop computer and take screenshots.",
        "left_click",
        ("key", "type", "mouse_move", "left_click", "left_click_drag", "right_click", "middle_click",
         "double_click", "scroll", "wait", "terminate"),
    ),
    "mobile_use": (
        "Use a touchscreen to operate a mobile device and take screenshots.",
        "click",
        ("key", "click", "long_press", "swipe", "type", "system_button", "open", "wait", "terminate"),
    ),
}


def tool_schema(tool: str, resolution: tuple[int, int]) -> dict:
    """JSON schema of a GUI tool whose ``coordinate`` is in pixels of a ``resolution`` (W, H) screen."""
    if tool not in GUI_TOOLS:
        raise ValueError(f"unknown GUI tool {tool!r}; expected one of: {', '.join(GUI_TOOLS)}")
    what, _, actions = GUI_TOOLS[tool]
    w, h = resolution
    description = (
        f"{what}\n* The screen's resolution is {w}x{h}.\n"
        "* Aim at the centre of the element you want to act on."
    )
    return {
        "type": "function",
        "function": {
            "name": tool,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": list(actions), "description": "The action to perform."},
                    "coordinate": {
                        "type": "array",
                        "description": "(x, y): pixels from the left edge and from the top edge of the screen.",
                    },
                    "text": {"type": "string", "description": "Text to type, or keys to press."},
                },
                "required": ["action"],
            },
        },
    }


def tool_system_text(tools: list[dict], system: str = DEFAULT_SYSTEM) -> str:
    """System message text announcing ``tools`` in the Qwen function-calling format."""
    listed = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return (
        f"{system}\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{listed}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def click_action(tool: str) -> str:
    """The tool's click action name (``left_click`` / ``click``)."""
    return GUI_TOOLS[tool][1]
