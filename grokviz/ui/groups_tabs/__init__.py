"""The Groups page's tabs (``grokviz.ui.pages.groups``), one module each with ``render(view)``:
``training``, ``irreps``, ``ablation``, ``neurons``, ``circles``. Each draws from one
:class:`~grokviz.ui.groups_tabs.state.GroupView` (``state``), as the explorer's tabs
(``grokviz.ui.tabs``) draw from ``grokviz.ui.state.View``.
"""
