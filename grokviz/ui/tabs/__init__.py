"""The run explorer's tabs (``grokviz.ui.pages.explore``), one module each with ``render(view)``."""
