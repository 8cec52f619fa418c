from helpgate.cli import main

raise SystemExit(main())
