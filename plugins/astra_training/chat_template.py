"""The Qwen/Hermes-style tool-calling chat template given to tokenizers ASTRA builds.

It renders what Qwen2.5/Qwen3 instruct models render, so the Hermes ``<tool_call>`` parser and
any tool (TRL, vLLM) that knows that format read our tiny models' output unchanged:

* ``tools`` go into the system turn as JSON lines inside ``<tools></tools>`` (or, with
  ``tools_format="signatures"``, one ``name(arg, ...): description`` line each; with
  ``tools_format="names"``, a bare ``name(arg, ...)`` line each between a ``Tools:`` line
  and a one-line call instruction);
* an assistant's ``tool_calls`` become ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``
  blocks after its text (``arguments`` given as a JSON string are written as they are);
* consecutive ``tool`` messages share one user turn, each inside ``<tool_response>``.

Every assistant turn's text, tool calls and ``<|im_end|>`` sit inside ``{% generation %}``
markers, so ``apply_chat_template(..., return_assistant_tokens_mask=True)`` marks exactly the
tokens a model must learn to produce; ``<|im_start|>assistant\\n`` (the generation prompt) and
the newline after ``<|im_end|>`` stay outside.
"""

from __future__ import annotations

TOOLS_PREAMBLE = (
    "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>"
)
# the shape of one call, which both instructions end with
_CALL_SHAPE = (
    "<tool_call>\\n"
    '{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call>'
)
TOOLS_INSTRUCTIONS = (
    "\\n</tools>\\n\\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\\n" + _CALL_SHAPE
)
# "names": the longer the prompt, the later a tiny model learns to copy a name from the
# question into a call (first-call copies, batch 16: from ~700 steps with a 33-token prompt,
# ~850 with 180 tokens, none within 400 with 440), so this lists bare signatures under the
# shortest instruction.
SHORT_PREAMBLE = "Tools:"
SHORT_INSTRUCTIONS = "\\nCall a tool as " + _CALL_SHAPE

_SIGNATURE = (
    "{%- set f = tool.function if tool.function is defined else tool %}"
    "{%- set p = f.parameters.properties if f.parameters is defined and "
    "f.parameters.properties is defined else {} %}"
    "{{- '\\n' + f.name + '(' + (p | list | join(', ')) + ')' }}"
)

# tools_format -> (preamble, how each tool is listed, instructions after the list)
_FORMATS = {
    "json": (
        TOOLS_PREAMBLE,
        "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}",
        TOOLS_INSTRUCTIONS,
    ),
    "signatures": (
        TOOLS_PREAMBLE,
        "{%- for tool in tools %}"
        + _SIGNATURE
        + "{{- ': ' + (f.description if f.description is defined else '') }}{%- endfor %}",
        TOOLS_INSTRUCTIONS,
    ),
    "names": (
        SHORT_PREAMBLE,
        "{%- for tool in tools %}" + _SIGNATURE + "{%- endfor %}",
        SHORT_INSTRUCTIONS,
    ),
}
TOOLS_FORMATS = tuple(_FORMATS)


def chat_template(tools_format: str = "json") -> str:
    """The template, with tools listed as JSON schemas (Qwen's way), as signatures with their
    descriptions, or as bare signatures."""
    try:
        preamble, lines, instructions = _FORMATS[tools_format]
    except KeyError:
        raise ValueError(
            f"unknown tools_format {tools_format!r}; choose one of {', '.join(TOOLS_FORMATS)}"
        ) from None
    return (
        _TEMPLATE.replace("<<PREAMBLE>>", preamble)
        .replace("<<TOOL_LINES>>", lines)
        .replace("<<INSTRUCTIONS>>", instructions)
    )


_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}"
    "{{- '<<PREAMBLE>>' }}"
    "<<TOOL_LINES>>"
    "{{- '<<INSTRUCTIONS>><|im_end|>\\n' }}"
    "{%- elif messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- elif message.role == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}"
    "{%- if message.content %}{{- message.content }}{%- endif %}"
    "{%- if message.tool_calls %}"
    "{%- for tool_call in message.tool_calls %}"
    "{%- if (loop.first and message.content) or not loop.first %}{{- '\\n' }}{%- endif %}"
    "{%- if tool_call.function %}{%- set tool_call = tool_call.function %}{%- endif %}"
    '{{- \'<tool_call>\\n{"name": "\' + tool_call.name + \'", "arguments": \' }}'
    "{%- if tool_call.arguments is string %}{{- tool_call.arguments }}"
    "{%- else %}{{- tool_call.arguments | tojson }}{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|im_end|>' }}"
    "{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- elif message.role == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}"
    "{{- '<|im_start|>user' }}"
    "{%- endif %}"
    "{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

CHAT_TEMPLATE = chat_template("json")
