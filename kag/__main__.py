from kag.cli import main

raise SystemExit(main())
