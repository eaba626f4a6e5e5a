from tradesim.cli import main

raise SystemExit(main())
