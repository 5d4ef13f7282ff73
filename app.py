"""grokviz explorer: ``streamlit run app.py`` (or ``grokviz app``). The UI lives in ``grokviz.ui``."""

from grokviz.ui.main import main

main()
