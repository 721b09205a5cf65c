from skillgap.cli import main

raise SystemExit(main())
