from vlprune.cli import main

raise SystemExit(main())
