{
	"patcher": {
		"fileversion": 1,
		"appversion": {
			"major": 8,
			"minor": 5,
			"revision": 5,
			"architecture": "x64",
			"modernui": 1
		},
		"classnamespace": "box",
		"rect": [
			100,
			100,
			1240,
			520
		],
		"openrect": [
			0,
			0,
			480,
			169
		],
		"bglocked": 0,
		"openinpresentation": 1,
		"default_fontsize": 10,
		"default_fontface": 0,
		"default_fontname": "Arial Bold",
		"gridonopen": 1,
		"gridsize": [
			8,
			8
		],
		"gridsnaponopen": 1,
		"objectsnaponopen": 1,
		"statusbarvisible": 2,
		"toolbarvisible": 1,
		"lefttoolbarpinned": 0,
		"toptoolbarpinned": 0,
		"righttoolbarpinned": 0,
		"bottomtoolbarpinned": 0,
		"toolbars_unpinned_last_save": 0,
		"tallnewobj": 0,
		"boxanimatetime": 200,
		"enablehscroll": 1,
		"enablevscroll": 1,
		"devicewidth": 480,
		"description": "latent-bridge: MusicVAE in Live (interpolate, morph, knobs, accompany)",
		"digest": "",
		"tags": "",
		"style": "",
		"subpatcher_template": "",
		"assistshowspatchername": 0,
		"boxes": [
			{
				"box": {
					"id": "obj-1",
					"maxclass": "comment",
					"text": "latent-bridge: MusicVAE over OSC. [js latentbridge.js] owns the Live API and the request state; udpsend/udpreceive carry OSC.",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						20,
						5,
						700,
						18
					]
				}
			},
			{
				"box": {
					"id": "obj-2",
					"maxclass": "newobj",
					"text": "live.thisdevice",
					"numinlets": 1,
					"numoutlets": 3,
					"outlettype": [
						"bang",
						"int",
						"int"
					],
					"patching_rect": [
						20,
						30,
						90,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-3",
					"maxclass": "message",
					"text": "init",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						20,
						60,
						35,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-4",
					"maxclass": "newobj",
					"text": "metro 50 @active 1",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						"bang"
					],
					"patching_rect": [
						130,
						30,
						110,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-5",
					"maxclass": "message",
					"text": "tick",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						130,
						60,
						35,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-6",
					"maxclass": "newobj",
					"text": "udpreceive 17400 @defer 1",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						260,
						60,
						140,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-7",
					"maxclass": "newobj",
					"text": "js latentbridge.js",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						20,
						300,
						400,
						20
					],
					"saved_object_attributes": {
						"filename": "latentbridge.js",
						"parameter_enable": 1
					},
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "LatentBridge State",
							"parameter_shortname": "State",
							"parameter_type": 3,
							"parameter_invisible": 1
						}
					},
					"parameter_enable": 1,
					"varname": "lb_js"
				}
			},
			{
				"box": {
					"id": "obj-8",
					"maxclass": "newobj",
					"text": "udpsend 127.0.0.1 9000",
					"numinlets": 1,
					"numoutlets": 0,
					"outlettype": [],
					"patching_rect": [
						20,
						380,
						150,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-9",
					"maxclass": "newobj",
					"text": "route status light menu replyport daemonport",
					"numinlets": 2,
					"numoutlets": 6,
					"outlettype": [
						"",
						"",
						"",
						"",
						"",
						""
					],
					"patching_rect": [
						230,
						340,
						300,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-10",
					"maxclass": "newobj",
					"text": "prepend set",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						230,
						370,
						75,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-11",
					"maxclass": "newobj",
					"text": "prepend bgfillcolor",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						310,
						370,
						110,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-12",
					"maxclass": "newobj",
					"text": "prepend port",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						430,
						370,
						75,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-13",
					"maxclass": "newobj",
					"text": "prepend port",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						510,
						370,
						75,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-14",
					"maxclass": "newobj",
					"text": "print latent-bridge",
					"numinlets": 1,
					"numoutlets": 0,
					"outlettype": [],
					"patching_rect": [
						590,
						370,
						110,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-15",
					"maxclass": "newobj",
					"text": "midiin",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						"int"
					],
					"patching_rect": [
						600,
						30,
						45,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-16",
					"maxclass": "newobj",
					"text": "midiout",
					"numinlets": 1,
					"numoutlets": 0,
					"outlettype": [],
					"patching_rect": [
						600,
						60,
						50,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-17",
					"maxclass": "comment",
					"text": "MIDI passes through untouched",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						655,
						45,
						170,
						18
					]
				}
			},
			{
				"box": {
					"id": "obj-18",
					"maxclass": "panel",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						430,
						400,
						14,
						14
					],
					"bgfillcolor_type": "color",
					"bgfillcolor_color": [
						0.85,
						0.2,
						0.2,
						1
					],
					"rounded": 7,
					"varname": "lb_light",
					"presentation": 1,
					"presentation_rect": [
						4,
						5,
						10,
						10
					]
				}
			},
			{
				"box": {
					"id": "obj-19",
					"maxclass": "comment",
					"text": "not connected",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						230,
						420,
						300,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						18,
						2,
						300,
						16
					],
					"varname": "lb_status"
				}
			},
			{
				"box": {
					"id": "obj-20",
					"maxclass": "umenu",
					"numinlets": 1,
					"numoutlets": 3,
					"outlettype": [
						"int",
						"",
						""
					],
					"parameter_enable": 0,
					"patching_rect": [
						540,
						420,
						140,
						20
					],
					"items": [],
					"varname": "lb_model",
					"presentation": 1,
					"presentation_rect": [
						326,
						2,
						150,
						18
					]
				}
			},
			{
				"box": {
					"id": "obj-21",
					"maxclass": "newobj",
					"text": "prepend model",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						540,
						450,
						85,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-22",
					"maxclass": "live.text",
					"text": "A",
					"texton": "A",
					"mode": 0,
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						20,
						120,
						70,
						16
					],
					"presentation": 1,
					"presentation_rect": [
						4,
						24,
						24,
						16
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "A",
							"parameter_shortname": "A",
							"parameter_type": 2,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_invisible": 2
						}
					},
					"varname": "A"
				}
			},
			{
				"box": {
					"id": "obj-23",
					"maxclass": "newobj",
					"text": "prepend seta",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						20,
						150,
						80,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-24",
					"maxclass": "live.text",
					"text": "B",
					"texton": "B",
					"mode": 0,
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						105,
						120,
						70,
						16
					],
					"presentation": 1,
					"presentation_rect": [
						30,
						24,
						24,
						16
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "B",
							"parameter_shortname": "B",
							"parameter_type": 2,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_invisible": 2
						}
					},
					"varname": "B"
				}
			},
			{
				"box": {
					"id": "obj-25",
					"maxclass": "newobj",
					"text": "prepend setb",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						105,
						150,
						80,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-26",
					"maxclass": "live.text",
					"text": "Generate",
					"texton": "Generate",
					"mode": 0,
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						190,
						120,
						70,
						16
					],
					"presentation": 1,
					"presentation_rect": [
						60,
						24,
						60,
						16
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Generate",
							"parameter_shortname": "Generate",
							"parameter_type": 2,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_invisible": 2
						}
					},
					"varname": "Generate"
				}
			},
			{
				"box": {
					"id": "obj-27",
					"maxclass": "newobj",
					"text": "prepend generate",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						190,
						150,
						80,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-28",
					"maxclass": "live.text",
					"text": "Interpolate",
					"texton": "Interpolate",
					"mode": 0,
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						275,
						120,
						70,
						16
					],
					"presentation": 1,
					"presentation_rect": [
						124,
						24,
						66,
						16
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Interpolate",
							"parameter_shortname": "Interpolate",
							"parameter_type": 2,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_invisible": 2
						}
					},
					"varname": "Interpolate"
				}
			},
			{
				"box": {
					"id": "obj-29",
					"maxclass": "newobj",
					"text": "prepend interpolate",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						275,
						150,
						80,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-30",
					"maxclass": "live.text",
					"text": "Morph",
					"texton": "Morph",
					"mode": 0,
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						360,
						120,
						70,
						16
					],
					"presentation": 1,
					"presentation_rect": [
						194,
						24,
						46,
						16
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Morph",
							"parameter_shortname": "Morph",
							"parameter_type": 2,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_invisible": 2
						}
					},
					"varname": "Morph"
				}
			},
			{
				"box": {
					"id": "obj-31",
					"maxclass": "newobj",
					"text": "prepend morph",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						360,
						150,
						80,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-32",
					"maxclass": "live.text",
					"text": "Stop",
					"texton": "Stop",
					"mode": 0,
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						445,
						120,
						70,
						16
					],
					"presentation": 1,
					"presentation_rect": [
						244,
						24,
						40,
						16
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Stop",
							"parameter_shortname": "Stop",
							"parameter_type": 2,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_invisible": 2
						}
					},
					"varname": "Stop"
				}
			},
			{
				"box": {
					"id": "obj-33",
					"maxclass": "newobj",
					"text": "prepend stop",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						445,
						150,
						80,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-34",
					"maxclass": "live.text",
					"text": "Accompany",
					"texton": "Accompany",
					"mode": 0,
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						530,
						120,
						70,
						16
					],
					"presentation": 1,
					"presentation_rect": [
						288,
						24,
						66,
						16
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Accompany",
							"parameter_shortname": "Accompany",
							"parameter_type": 2,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_invisible": 2
						}
					},
					"varname": "Accompany"
				}
			},
			{
				"box": {
					"id": "obj-35",
					"maxclass": "newobj",
					"text": "prepend accompany",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						530,
						150,
						80,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-36",
					"maxclass": "live.text",
					"text": "Reconnect",
					"texton": "Reconnect",
					"mode": 0,
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						615,
						120,
						70,
						16
					],
					"presentation": 1,
					"presentation_rect": [
						358,
						24,
						62,
						16
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Reconnect",
							"parameter_shortname": "Reconnect",
							"parameter_type": 2,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_invisible": 2
						}
					},
					"varname": "Reconnect"
				}
			},
			{
				"box": {
					"id": "obj-37",
					"maxclass": "newobj",
					"text": "prepend reconnect",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						615,
						150,
						80,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-38",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						20,
						190,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						4,
						44,
						44,
						48
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Temperature",
							"parameter_shortname": "Temp",
							"parameter_type": 0,
							"parameter_mmin": 0,
							"parameter_mmax": 1.5,
							"parameter_initial": [
								0.5
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 1
						}
					},
					"varname": "Temperature"
				}
			},
			{
				"box": {
					"id": "obj-39",
					"maxclass": "live.numbox",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						100,
						190,
						44,
						15
					],
					"presentation": 1,
					"presentation_rect": [
						56,
						60,
						40,
						15
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Steps",
							"parameter_shortname": "Steps",
							"parameter_type": 1,
							"parameter_mmin": 2,
							"parameter_mmax": 16,
							"parameter_initial": [
								5
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 0
						}
					},
					"varname": "Steps"
				}
			},
			{
				"box": {
					"id": "obj-40",
					"maxclass": "live.numbox",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						180,
						190,
						44,
						15
					],
					"presentation": 1,
					"presentation_rect": [
						102,
						60,
						40,
						15
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Bars per step",
							"parameter_shortname": "Bars/step",
							"parameter_type": 1,
							"parameter_mmin": 1,
							"parameter_mmax": 16,
							"parameter_initial": [
								2
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 0
						}
					},
					"varname": "Bars per step"
				}
			},
			{
				"box": {
					"id": "obj-41",
					"maxclass": "live.menu",
					"numinlets": 1,
					"numoutlets": 3,
					"outlettype": [
						"",
						"",
						"float"
					],
					"patching_rect": [
						260,
						190,
						80,
						15
					],
					"presentation": 1,
					"presentation_rect": [
						148,
						60,
						70,
						15
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Morph mode",
							"parameter_shortname": "Mode",
							"parameter_type": 2,
							"parameter_enum": [
								"once",
								"loop",
								"pingpong"
							],
							"parameter_mmax": 2,
							"parameter_initial": [
								1
							],
							"parameter_initial_enable": 1
						}
					},
					"varname": "Morph mode"
				}
			},
			{
				"box": {
					"id": "obj-42",
					"maxclass": "live.numbox",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						380,
						190,
						50,
						15
					],
					"presentation": 1,
					"presentation_rect": [
						424,
						60,
						52,
						15
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Daemon port",
							"parameter_shortname": "Port",
							"parameter_type": 1,
							"parameter_mmin": 1,
							"parameter_mmax": 65535,
							"parameter_initial": [
								9000
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 0
						}
					},
					"varname": "Daemon port"
				}
			},
			{
				"box": {
					"id": "obj-43",
					"maxclass": "comment",
					"text": "steps",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						100,
						210,
						40,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						56,
						44,
						40,
						16
					]
				}
			},
			{
				"box": {
					"id": "obj-44",
					"maxclass": "comment",
					"text": "bars/step",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						180,
						210,
						60,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						102,
						44,
						46,
						16
					]
				}
			},
			{
				"box": {
					"id": "obj-45",
					"maxclass": "comment",
					"text": "mode",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						260,
						210,
						40,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						148,
						44,
						40,
						16
					]
				}
			},
			{
				"box": {
					"id": "obj-46",
					"maxclass": "comment",
					"text": "daemon port",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						380,
						210,
						70,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						424,
						44,
						56,
						16
					]
				}
			},
			{
				"box": {
					"id": "obj-47",
					"maxclass": "comment",
					"text": "A: -",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						460,
						190,
						60,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						228,
						58,
						50,
						16
					],
					"varname": "lb_slota"
				}
			},
			{
				"box": {
					"id": "obj-48",
					"maxclass": "comment",
					"text": "B: -",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						460,
						210,
						60,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						280,
						58,
						50,
						16
					],
					"varname": "lb_slotb"
				}
			},
			{
				"box": {
					"id": "obj-49",
					"maxclass": "newobj",
					"text": "prepend param temperature",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						20,
						250,
						150,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-50",
					"maxclass": "newobj",
					"text": "prepend param steps",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						140,
						250,
						150,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-51",
					"maxclass": "newobj",
					"text": "prepend param barsperstep",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						260,
						250,
						150,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-52",
					"maxclass": "newobj",
					"text": "prepend param mode",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						380,
						250,
						150,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-53",
					"maxclass": "newobj",
					"text": "prepend port",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						500,
						250,
						150,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-54",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						700,
						120,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						4,
						96,
						44,
						48
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Knob 1",
							"parameter_shortname": "Knob 1",
							"parameter_type": 0,
							"parameter_mmin": -1,
							"parameter_mmax": 1,
							"parameter_initial": [
								0
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 1
						}
					},
					"varname": "Knob 1"
				}
			},
			{
				"box": {
					"id": "obj-55",
					"maxclass": "newobj",
					"text": "prepend knob 0",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						700,
						180,
						55,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-56",
					"maxclass": "comment",
					"text": "-",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						700,
						205,
						55,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						4,
						146,
						56,
						16
					],
					"varname": "lb_label1"
				}
			},
			{
				"box": {
					"id": "obj-57",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						760,
						120,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						63,
						96,
						44,
						48
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Knob 2",
							"parameter_shortname": "Knob 2",
							"parameter_type": 0,
							"parameter_mmin": -1,
							"parameter_mmax": 1,
							"parameter_initial": [
								0
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 1
						}
					},
					"varname": "Knob 2"
				}
			},
			{
				"box": {
					"id": "obj-58",
					"maxclass": "newobj",
					"text": "prepend knob 1",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						760,
						180,
						55,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-59",
					"maxclass": "comment",
					"text": "-",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						760,
						205,
						55,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						63,
						146,
						56,
						16
					],
					"varname": "lb_label2"
				}
			},
			{
				"box": {
					"id": "obj-60",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						820,
						120,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						122,
						96,
						44,
						48
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Knob 3",
							"parameter_shortname": "Knob 3",
							"parameter_type": 0,
							"parameter_mmin": -1,
							"parameter_mmax": 1,
							"parameter_initial": [
								0
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 1
						}
					},
					"varname": "Knob 3"
				}
			},
			{
				"box": {
					"id": "obj-61",
					"maxclass": "newobj",
					"text": "prepend knob 2",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						820,
						180,
						55,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-62",
					"maxclass": "comment",
					"text": "-",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						820,
						205,
						55,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						122,
						146,
						56,
						16
					],
					"varname": "lb_label3"
				}
			},
			{
				"box": {
					"id": "obj-63",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						880,
						120,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						181,
						96,
						44,
						48
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Knob 4",
							"parameter_shortname": "Knob 4",
							"parameter_type": 0,
							"parameter_mmin": -1,
							"parameter_mmax": 1,
							"parameter_initial": [
								0
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 1
						}
					},
					"varname": "Knob 4"
				}
			},
			{
				"box": {
					"id": "obj-64",
					"maxclass": "newobj",
					"text": "prepend knob 3",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						880,
						180,
						55,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-65",
					"maxclass": "comment",
					"text": "-",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						880,
						205,
						55,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						181,
						146,
						56,
						16
					],
					"varname": "lb_label4"
				}
			},
			{
				"box": {
					"id": "obj-66",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						940,
						120,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						240,
						96,
						44,
						48
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Knob 5",
							"parameter_shortname": "Knob 5",
							"parameter_type": 0,
							"parameter_mmin": -1,
							"parameter_mmax": 1,
							"parameter_initial": [
								0
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 1
						}
					},
					"varname": "Knob 5"
				}
			},
			{
				"box": {
					"id": "obj-67",
					"maxclass": "newobj",
					"text": "prepend knob 4",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						940,
						180,
						55,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-68",
					"maxclass": "comment",
					"text": "-",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						940,
						205,
						55,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						240,
						146,
						56,
						16
					],
					"varname": "lb_label5"
				}
			},
			{
				"box": {
					"id": "obj-69",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						1000,
						120,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						299,
						96,
						44,
						48
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Knob 6",
							"parameter_shortname": "Knob 6",
							"parameter_type": 0,
							"parameter_mmin": -1,
							"parameter_mmax": 1,
							"parameter_initial": [
								0
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 1
						}
					},
					"varname": "Knob 6"
				}
			},
			{
				"box": {
					"id": "obj-70",
					"maxclass": "newobj",
					"text": "prepend knob 5",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1000,
						180,
						55,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-71",
					"maxclass": "comment",
					"text": "-",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						1000,
						205,
						55,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						299,
						146,
						56,
						16
					],
					"varname": "lb_label6"
				}
			},
			{
				"box": {
					"id": "obj-72",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						1060,
						120,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						358,
						96,
						44,
						48
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Knob 7",
							"parameter_shortname": "Knob 7",
							"parameter_type": 0,
							"parameter_mmin": -1,
							"parameter_mmax": 1,
							"parameter_initial": [
								0
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 1
						}
					},
					"varname": "Knob 7"
				}
			},
			{
				"box": {
					"id": "obj-73",
					"maxclass": "newobj",
					"text": "prepend knob 6",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1060,
						180,
						55,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-74",
					"maxclass": "comment",
					"text": "-",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						1060,
						205,
						55,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						358,
						146,
						56,
						16
					],
					"varname": "lb_label7"
				}
			},
			{
				"box": {
					"id": "obj-75",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						1120,
						120,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						417,
						96,
						44,
						48
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Knob 8",
							"parameter_shortname": "Knob 8",
							"parameter_type": 0,
							"parameter_mmin": -1,
							"parameter_mmax": 1,
							"parameter_initial": [
								0
							],
							"parameter_initial_enable": 1,
							"parameter_unitstyle": 1
						}
					},
					"varname": "Knob 8"
				}
			},
			{
				"box": {
					"id": "obj-76",
					"maxclass": "newobj",
					"text": "prepend knob 7",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1120,
						180,
						55,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-77",
					"maxclass": "comment",
					"text": "-",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						1120,
						205,
						55,
						18
					],
					"presentation": 1,
					"presentation_rect": [
						417,
						146,
						56,
						16
					],
					"varname": "lb_label8"
				}
			},
			{
				"box": {
					"id": "obj-78",
					"maxclass": "live.text",
					"text": "Scale",
					"texton": "Scale",
					"mode": 1,
					"annotation": "Keep melody and bass notes in the song's scale (Live 12's Scale: root and scale of the Live set).",
					"annotation_name": "Scale",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						20,
						460,
						44,
						16
					],
					"presentation": 1,
					"presentation_rect": [
						336,
						60,
						40,
						15
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Scale",
							"parameter_shortname": "Scale",
							"parameter_type": 2,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_initial": [
								0
							],
							"parameter_initial_enable": 1
						}
					},
					"varname": "Scale"
				}
			},
			{
				"box": {
					"id": "obj-79",
					"maxclass": "newobj",
					"text": "prepend param scale",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						20,
						484,
						110,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-80",
					"maxclass": "live.text",
					"text": "Learn",
					"texton": "Learn",
					"mode": 0,
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						20,
						520,
						44,
						16
					],
					"presentation": 1,
					"presentation_rect": [
						228,
						78,
						50,
						15
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Learn",
							"parameter_shortname": "Learn",
							"parameter_type": 2,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_invisible": 2
						}
					},
					"varname": "Learn",
					"annotation": "Learn a palette (your style) from this track's clips; the device's own LB clips are left out.",
					"annotation_name": "Learn"
				}
			},
			{
				"box": {
					"id": "obj-81",
					"maxclass": "newobj",
					"text": "prepend learn",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						20,
						544,
						90,
						20
					]
				}
			},
			{
				"box": {
					"id": "obj-82",
					"maxclass": "live.text",
					"text": "Mine",
					"texton": "Mine",
					"mode": 1,
					"annotation": "Generate, Morph (toward your palette, no B needed) and the dials use the palette Learn made.",
					"annotation_name": "Mine",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						140,
						520,
						44,
						16
					],
					"presentation": 1,
					"presentation_rect": [
						282,
						78,
						40,
						15
					],
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Mine",
							"parameter_shortname": "Mine",
							"parameter_type": 2,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_initial": [
								0
							],
							"parameter_initial_enable": 1
						}
					},
					"varname": "Mine"
				}
			},
			{
				"box": {
					"id": "obj-83",
					"maxclass": "newobj",
					"text": "prepend param mine",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						140,
						544,
						110,
						20
					]
				}
			}
		],
		"lines": [
			{
				"patchline": {
					"source": [
						"obj-22",
						0
					],
					"destination": [
						"obj-23",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-23",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-24",
						0
					],
					"destination": [
						"obj-25",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-25",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-26",
						0
					],
					"destination": [
						"obj-27",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-27",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-28",
						0
					],
					"destination": [
						"obj-29",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-29",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-30",
						0
					],
					"destination": [
						"obj-31",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-31",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-32",
						0
					],
					"destination": [
						"obj-33",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-33",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-34",
						0
					],
					"destination": [
						"obj-35",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-35",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-36",
						0
					],
					"destination": [
						"obj-37",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-37",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-38",
						0
					],
					"destination": [
						"obj-49",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-49",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-39",
						0
					],
					"destination": [
						"obj-50",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-50",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-40",
						0
					],
					"destination": [
						"obj-51",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-51",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-41",
						0
					],
					"destination": [
						"obj-52",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-52",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-42",
						0
					],
					"destination": [
						"obj-53",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-53",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-54",
						0
					],
					"destination": [
						"obj-55",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-55",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-57",
						0
					],
					"destination": [
						"obj-58",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-58",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-60",
						0
					],
					"destination": [
						"obj-61",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-61",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-63",
						0
					],
					"destination": [
						"obj-64",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-64",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-66",
						0
					],
					"destination": [
						"obj-67",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-67",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-69",
						0
					],
					"destination": [
						"obj-70",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-70",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-72",
						0
					],
					"destination": [
						"obj-73",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-73",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-75",
						0
					],
					"destination": [
						"obj-76",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-76",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-2",
						0
					],
					"destination": [
						"obj-3",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-3",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-4",
						0
					],
					"destination": [
						"obj-5",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-5",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-6",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-7",
						0
					],
					"destination": [
						"obj-8",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-7",
						1
					],
					"destination": [
						"obj-9",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-9",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-10",
						0
					],
					"destination": [
						"obj-19",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-9",
						1
					],
					"destination": [
						"obj-11",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-11",
						0
					],
					"destination": [
						"obj-18",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-9",
						2
					],
					"destination": [
						"obj-20",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-9",
						3
					],
					"destination": [
						"obj-12",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-12",
						0
					],
					"destination": [
						"obj-6",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-9",
						4
					],
					"destination": [
						"obj-13",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-13",
						0
					],
					"destination": [
						"obj-8",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-9",
						5
					],
					"destination": [
						"obj-14",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-20",
						1
					],
					"destination": [
						"obj-21",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-21",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-15",
						0
					],
					"destination": [
						"obj-16",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-78",
						0
					],
					"destination": [
						"obj-79",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-79",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-80",
						0
					],
					"destination": [
						"obj-81",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-81",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-82",
						0
					],
					"destination": [
						"obj-83",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-83",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			}
		],
		"parameters": {
			"obj-7": [
				"LatentBridge State",
				"State",
				0
			],
			"obj-22": [
				"A",
				"A",
				0
			],
			"obj-24": [
				"B",
				"B",
				0
			],
			"obj-26": [
				"Generate",
				"Generate",
				0
			],
			"obj-28": [
				"Interpolate",
				"Interpolate",
				0
			],
			"obj-30": [
				"Morph",
				"Morph",
				0
			],
			"obj-32": [
				"Stop",
				"Stop",
				0
			],
			"obj-34": [
				"Accompany",
				"Accompany",
				0
			],
			"obj-36": [
				"Reconnect",
				"Reconnect",
				0
			],
			"obj-38": [
				"Temperature",
				"Temp",
				0
			],
			"obj-39": [
				"Steps",
				"Steps",
				0
			],
			"obj-40": [
				"Bars per step",
				"Bars/step",
				0
			],
			"obj-41": [
				"Morph mode",
				"Mode",
				0
			],
			"obj-42": [
				"Daemon port",
				"Port",
				0
			],
			"obj-54": [
				"Knob 1",
				"Knob 1",
				0
			],
			"obj-57": [
				"Knob 2",
				"Knob 2",
				0
			],
			"obj-60": [
				"Knob 3",
				"Knob 3",
				0
			],
			"obj-63": [
				"Knob 4",
				"Knob 4",
				0
			],
			"obj-66": [
				"Knob 5",
				"Knob 5",
				0
			],
			"obj-69": [
				"Knob 6",
				"Knob 6",
				0
			],
			"obj-72": [
				"Knob 7",
				"Knob 7",
				0
			],
			"obj-75": [
				"Knob 8",
				"Knob 8",
				0
			],
			"obj-78": [
				"Scale",
				"Scale",
				0
			],
			"obj-80": [
				"Learn",
				"Learn",
				0
			],
			"obj-82": [
				"Mine",
				"Mine",
				0
			],
			"inherited_shortname": 1
		},
		"dependency_cache": [
			{
				"name": "latentbridge.js",
				"bootpath": "~/latent-bridge/max_for_live/LatentBridge/code",
				"patcherrelativepath": "../code",
				"type": "TEXT",
				"implicit": 1
			},
			{
				"name": "lb_app.js",
				"bootpath": "~/latent-bridge/max_for_live/LatentBridge/code",
				"patcherrelativepath": "../code",
				"type": "TEXT",
				"implicit": 1
			},
			{
				"name": "lb_client.js",
				"bootpath": "~/latent-bridge/max_for_live/LatentBridge/code",
				"patcherrelativepath": "../code",
				"type": "TEXT",
				"implicit": 1
			},
			{
				"name": "lb_knobs.js",
				"bootpath": "~/latent-bridge/max_for_live/LatentBridge/code",
				"patcherrelativepath": "../code",
				"type": "TEXT",
				"implicit": 1
			},
			{
				"name": "lb_live.js",
				"bootpath": "~/latent-bridge/max_for_live/LatentBridge/code",
				"patcherrelativepath": "../code",
				"type": "TEXT",
				"implicit": 1
			},
			{
				"name": "lb_notes.js",
				"bootpath": "~/latent-bridge/max_for_live/LatentBridge/code",
				"patcherrelativepath": "../code",
				"type": "TEXT",
				"implicit": 1
			},
			{
				"name": "lb_scheduler.js",
				"bootpath": "~/latent-bridge/max_for_live/LatentBridge/code",
				"patcherrelativepath": "../code",
				"type": "TEXT",
				"implicit": 1
			},
			{
				"name": "lb_slots.js",
				"bootpath": "~/latent-bridge/max_for_live/LatentBridge/code",
				"patcherrelativepath": "../code",
				"type": "TEXT",
				"implicit": 1
			},
			{
				"name": "lb_transport.js",
				"bootpath": "~/latent-bridge/max_for_live/LatentBridge/code",
				"patcherrelativepath": "../code",
				"type": "TEXT",
				"implicit": 1
			}
		],
		"latency": 0,
		"is_mpe": 0,
		"minimum_live_version": "11.0",
		"minimum_max_version": "8.1.2",
		"platform_compatibility": 0,
		"project": {
			"version": 1,
			"creationdate": 3590052786,
			"modificationdate": 3590052786,
			"viewrect": [
				0,
				0,
				300,
				500
			],
			"autoorganize": 1,
			"hideprojectwindow": 1,
			"showdependencies": 1,
			"autolocalize": 0,
			"contents": {
				"patchers": {},
				"code": {
					"latentbridge.js": {
						"kind": "javascript",
						"local": 1
					},
					"lb_app.js": {
						"kind": "javascript",
						"local": 1
					},
					"lb_client.js": {
						"kind": "javascript",
						"local": 1
					},
					"lb_knobs.js": {
						"kind": "javascript",
						"local": 1
					},
					"lb_live.js": {
						"kind": "javascript",
						"local": 1
					},
					"lb_notes.js": {
						"kind": "javascript",
						"local": 1
					},
					"lb_scheduler.js": {
						"kind": "javascript",
						"local": 1
					},
					"lb_slots.js": {
						"kind": "javascript",
						"local": 1
					},
					"lb_transport.js": {
						"kind": "javascript",
						"local": 1
					}
				}
			},
			"layout": {},
			"searchpath": {},
			"detailsvisible": 0,
			"amxdtype": 1835887981,
			"readonly": 0,
			"devpathtype": 0,
			"devpath": ".",
			"sortmode": 0,
			"viewmode": 0,
			"includepackages": 0
		},
		"autosave": 0
	}
}
