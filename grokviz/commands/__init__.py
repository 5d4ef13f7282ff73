"""The commands of the ``grokviz`` console script, one module each (``grokviz.cli`` routes to them).

Each module owns its parser (``build_parser``) and ``main(argv) -> exit status``; ``flags`` holds
what they share (the one-line-error parser, value types, the flags generated from a config class).
The interfaces are ``grokviz COMMAND`` and ``python -m grokviz COMMAND``.
"""
