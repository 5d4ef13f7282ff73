"""The app's pages, one Streamlit script each (listed in ``grokviz.ui.navigation``)."""
